import importlib
import pkgutil
import subprocess
import sys

import biofeed.sessions


def test_every_module_declares_all_and_its_names_exist():
    for module_info in pkgutil.iter_modules(biofeed.sessions.__path__):
        module = importlib.import_module(f"biofeed.sessions.{module_info.name}")
        assert hasattr(module, "__all__"), module_info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{module_info.name}.{name}"


def test_sessions_and_boards_import_no_plotting_or_gui():
    code = (
        "import sys, biofeed.boards, biofeed.sessions.commands, biofeed.sessions.calibrate;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PySide6', 'pyqtgraph', 'bleak')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
