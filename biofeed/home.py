"""Where biofeed keeps a user's data: ``$BIOFEED_HOME``, else the platform's per-user data folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

__all__ = ["biofeed_home", "new_recording_path"]


def biofeed_home() -> Path:
    """The data folder (created owner-only on first use): ``$BIOFEED_HOME`` or the platform default."""
    home = Path(os.environ.get("BIOFEED_HOME") or platformdirs.user_data_dir("biofeed"))
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


def new_recording_path(prefix: str) -> Path:
    """A fresh, not yet existing recording folder ``<home>/recordings/<prefix>-<UTC time>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = biofeed_home() / "recordings"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{prefix}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{prefix}-{stamp}-{n}"
    return path
