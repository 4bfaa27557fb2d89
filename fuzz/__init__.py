"""Coverage-guided fuzzing (atheris / libFuzzer) of everything biofeed reads from outside.

``python -m fuzz NAME [--seconds N | --runs N] [--seed S]`` runs one harness (``python -m fuzz --list``
names them); docs/reliability.md says what each one checks and how long they ran. The harnesses
live in :mod:`fuzz.targets`, the seed inputs they start from in :mod:`fuzz.seeds`.
"""
