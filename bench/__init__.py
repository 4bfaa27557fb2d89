"""Benchmarks of biofeed: ``python -m bench [NAME ...] [--quick] [--json]``.

Each ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> dict`` returning ``name``, ``figures``
(name -> number) and ``peers`` (name -> number, may be empty).
"""
