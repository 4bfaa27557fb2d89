"""Where exports go: private files and folders that appear under their name only when complete.

Exports hold health data, so files are created 0o600 and folders 0o700, as recordings are. A
folder export is written as ``<out>.partial`` and renamed to ``<out>`` at the end, so an export
that fails or is interrupted never leaves something that looks complete; nothing is overwritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from biofeed.errors import RecordingError

__all__ = ["check_new_path", "file_stem", "partial_folder", "private_file"]

_FOLDER_MODE = 0o700
_FILE_MODE = 0o600


def check_new_path(out: Path) -> None:
    """Refuse an output path that exists (exports never overwrite).

    Raises
    ------
    RecordingError
        When ``out`` or ``<out>.partial`` exists, or the parent folder does not.
    """
    for path in (out, out.with_name(out.name + ".partial")):
        if path.exists() or path.is_symlink():
            raise RecordingError(path, "already exists; an export never overwrites anything (choose another --out)")
    if not out.parent.is_dir():
        raise RecordingError(out, f"the folder {out.parent} does not exist")


def private_file(path: Path) -> BinaryIO:
    """Create ``path`` (it must not exist) for buffered binary writing, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    return os.fdopen(fd, "wb", buffering=1 << 20)


@contextlib.contextmanager
def partial_folder(out: Path) -> Iterator[Path]:
    """Yield a new private folder ``<out>.partial``; rename it to ``out`` when the block ends without error.

    Raises
    ------
    RecordingError
        When the folder cannot be created or renamed (the partial folder is removed).
    """
    partial = out.with_name(out.name + ".partial")
    try:
        partial.mkdir(mode=_FOLDER_MODE)
        os.chmod(partial, _FOLDER_MODE)
    except OSError as exc:
        raise RecordingError(partial, f"cannot create the export folder: {exc.strerror or exc}") from exc
    try:
        yield partial
        os.replace(partial, out)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise RecordingError(out, f"cannot write the export: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def file_stem(name: str, taken: set[str]) -> str:
    """Return a file name stem for a stream: its name with only ``[A-Za-z0-9_.-]`` kept, unique in ``taken``.

    The stem is added to ``taken``; ``events`` and ``channels`` are taken by the export's own files.
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "stream"
    candidate, n = stem, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}_{n}"
    taken.add(candidate.lower())
    return candidate
