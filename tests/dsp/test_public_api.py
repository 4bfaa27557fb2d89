import importlib
import pkgutil

import biofeed.dsp


def test_every_module_declares_all_and_the_package_exports_exist():
    for module_info in pkgutil.iter_modules(biofeed.dsp.__path__):
        if module_info.ispkg:
            continue  # sub-packages (imu) keep their own
        module = importlib.import_module(f"biofeed.dsp.{module_info.name}")
        assert hasattr(module, "__all__"), module_info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{module_info.name}.{name}"
    for name in biofeed.dsp.__all__:
        assert hasattr(biofeed.dsp, name), name
    assert sorted(biofeed.dsp.__all__) == biofeed.dsp.__all__
