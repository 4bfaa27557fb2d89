"""The benchmark harness `python -m bench`, on a fake benchmark package (the real ones take minutes)."""

from __future__ import annotations

import ast
import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest

from bench.__main__ import QUICK_SUITE, REQUIRED_FIGURES, available, main, missing_figures

FAKE = {
    "fast": """
        def run(quick):
            return {"name": "fast", "figures": {"speed": 2.0 if quick else 1.0, "bad": float("nan")}, "peers": {"p": 3}}
    """,
    "lacking": """
        def run(quick):
            return {"name": "lacking", "figures": {"other": 1}, "peers": {}}
    """,
    "broken": """
        def run(quick):
            raise RuntimeError("no device here")
    """,
    "slow": """
        def run(quick):
            return {"name": "slow", "figures": {"t": 1}, "peers": {}}
    """,
}
REQUIRED = {"fast": ("speed",), "lacking": ("needed",)}


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    package = tmp_path / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    for name, source in FAKE.items():
        (package / f"bench_{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    (package / "helpers.py").write_text("", encoding="utf-8")  # not a benchmark
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "fakebench"
    for module in [m for m in sys.modules if m == "fakebench" or m.startswith("fakebench.")]:
        del sys.modules[module]


def _run(package: str, capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv), package=package, required=REQUIRED, quick_suite=("fast", "lacking"))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_finds_the_bench_modules(fake_package):
    assert available(fake_package) == ["broken", "fast", "lacking", "slow"]


def test_json_is_one_strict_object_per_line_with_machine_and_run(fake_package, capsys):
    code, lines, err = _run(fake_package, capsys, "fast", "slow", "--json", "--quick")
    assert code == 0, err
    assert [line["name"] for line in lines] == ["fast", "slow"]
    fast = lines[0]
    assert set(fast) == {"name", "figures", "peers", "machine", "run"}
    assert fast["figures"] == {"speed": 2.0, "bad": None}  # NaN is not JSON: null
    assert fast["peers"] == {"p": 3}
    assert {"cpu", "cores", "python", "numpy"} <= set(fast["machine"])
    assert fast["run"]["quick"] is True
    assert fast["run"]["wall_s"] >= 0


def test_full_runs_pass_quick_false(fake_package, capsys):
    _, lines, _ = _run(fake_package, capsys, "fast", "--json")
    assert lines[0]["figures"]["speed"] == 1.0
    assert lines[0]["run"]["quick"] is False


def test_a_failing_or_incomplete_benchmark_is_reported_and_the_others_run(fake_package, capsys):
    code, lines, err = _run(fake_package, capsys, "--json")
    assert code == 1
    assert [line["name"] for line in lines] == ["fast", "slow"]
    assert "bench: broken: RuntimeError: no device here" in err
    assert "bench: lacking: ValueError: benchmark 'lacking' reports no needed" in err


def test_quick_without_names_runs_the_quick_suite_and_all_adds_the_rest(fake_package, capsys):
    _, lines, _ = _run(fake_package, capsys, "--quick", "--json")
    assert [line["name"] for line in lines] == ["fast"]  # "lacking" ran too, and failed its check
    _, lines, _ = _run(fake_package, capsys, "--quick", "--all", "--json")
    assert [line["name"] for line in lines] == ["fast", "slow"]


def test_the_table_shows_figures_and_peers(fake_package, capsys):
    assert main(["fast"], package=fake_package, required=REQUIRED) == 0
    out = capsys.readouterr().out
    assert "== fast" in out
    assert "speed" in out
    assert "peer: p" in out


def test_an_unknown_name_is_a_usage_error(fake_package, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"], package=fake_package, required=REQUIRED)
    assert exc.value.code == 2
    assert "unknown benchmark nope" in capsys.readouterr().err


def test_required_figures_are_the_issues_names():
    assert dict(REQUIRED_FIGURES) == {
        "decoder": ("mb_per_s",),
        "live_pipeline": ("x_realtime", "block_p99_ms"),
        "offline_analysis": ("x_realtime", "speedup_vs_neurokit2"),
        "end_to_end": ("latency_p99_ms",),
        "memory": ("growth_mb",),
        "gui": ("fps",),
    }
    assert set(QUICK_SUITE) <= set(available())
    assert missing_figures({"name": "memory", "figures": {}}) == ["growth_mb"]
    assert missing_figures({"name": "memory", "figures": {"growth_mb": 1.0}}) == []


@pytest.mark.parametrize("name", sorted(REQUIRED_FIGURES))
def test_every_named_benchmark_module_exists_with_a_run(name):
    root = Path(__file__).resolve().parents[2] / "bench"
    tree = ast.parse((root / f"bench_{name}.py").read_text(encoding="utf-8"))
    runs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run"]
    assert [[a.arg for a in r.args.args] for r in runs] == [["quick"]]
