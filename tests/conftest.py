"""Test-suite settings: every hypothesis test is deterministic (the same examples on every run)."""

from hypothesis import settings

# Derandomized: CI and every developer run the same examples, so a failure reproduces and a pass
# means the same thing everywhere. `pytest --hypothesis-profile=explore` searches afresh.
settings.register_profile("default", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")
