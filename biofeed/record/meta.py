"""The ``recording.json`` document: format version, software version and device INFO as JSON.

The writer builds it (:func:`new_meta`), the reader checks it (:func:`check_meta`); both convert the
device's INFO with :func:`device_info_to_json` and :func:`device_info_from_json`, so a recording
holds the same description of the device that the live decoder had.
"""

from __future__ import annotations

import importlib.metadata
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from biofeed.blocks import ChannelInfo, ChannelKind, DeviceInfo, StreamInfo
from biofeed.errors import RecordingError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "META_FILE",
    "check_format_version",
    "check_meta",
    "device_info_from_json",
    "device_info_to_json",
    "new_meta",
    "software_version",
    "utc_now_iso",
]

FORMAT_NAME = "biofeed-recording"
FORMAT_VERSION = 1
"""Version of the recording folder format (recording.json, frames.bin, events.jsonl)."""

META_FILE = "recording.json"


def software_version() -> str:
    """Return the biofeed version: ``biofeed.__version__`` when the package sets it, else its metadata."""
    import biofeed

    version = getattr(biofeed, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version("biofeed")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def utc_now_iso() -> str:
    """Return the current time as ISO 8601 in UTC with a ``Z`` suffix, e.g. ``2025-01-31T09:15:02.123456Z``."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_meta(source_url: str, client: str | None) -> dict[str, Any]:
    """Return the ``recording.json`` document of a recording that starts now (no device INFO yet).

    Parameters
    ----------
    source_url : str
        The source URL the recording comes from.
    client : str or None
        The client's pseudonym (never a real name), or None.
    """
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "software_version": software_version(),
        "created": utc_now_iso(),
        "source_url": source_url,
        "client": client,
        "device": None,
        "closed": None,
        "summary": None,
    }


def check_format_version(path: Path, meta: dict[str, Any], newest: int) -> None:
    """Check the ``format_version`` of a parsed ``recording.json``.

    Raises
    ------
    RecordingError
        When it is not a whole number >= 1, or is above ``newest`` (the version this biofeed reads).
    """
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordingError(path, f"{META_FILE} has no valid format_version (got {version!r})")
    if version > newest:
        raise RecordingError(
            path, f"recording format {version} is newer than this biofeed reads ({newest}); update biofeed"
        )


def check_meta(path: Path, meta: object) -> dict[str, Any]:
    """Check a parsed ``recording.json`` and return it.

    Raises
    ------
    RecordingError
        When it is not a JSON object of this format, comes from a newer format version, or holds a
        device description that does not parse.
    """
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise RecordingError(path, f"{META_FILE} is not a biofeed recording description")
    check_format_version(path, meta, FORMAT_VERSION)
    if meta.get("device") is not None:
        device_info_from_json(path, meta["device"])
    return meta


def device_info_to_json(info: DeviceInfo) -> dict[str, Any]:
    """Return a device INFO as a JSON-able dict.

    Returns
    -------
    dict
        ``device_id``, ``firmware_version`` [major, minor, patch], ``board_profile``,
        ``protocol_version`` [major, minor], ``streams``: a list of ``name``, ``stream_id``,
        ``sample_rate_hz``, ``channels`` (a list of ``name``, ``kind``, ``unit``, ``site``).
    """
    return {
        "device_id": info.device_id,
        "firmware_version": list(info.firmware_version),
        "board_profile": info.board_profile,
        "protocol_version": list(info.protocol_version),
        "streams": [
            {
                "name": s.name,
                "stream_id": s.stream_id,
                "sample_rate_hz": s.sample_rate_hz,
                "channels": [{"name": c.name, "kind": str(c.kind), "unit": c.unit, "site": c.site} for c in s.channels],
            }
            for s in info.streams
        ],
    }


def _int_list(value: object, n: int) -> tuple[int, ...]:
    if not (isinstance(value, list) and len(value) == n and all(type(v) is int for v in value)):
        raise ValueError(f"expected a list of {n} integers, got {value!r}")
    return tuple(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def _channel(value: object) -> ChannelInfo:
    if not isinstance(value, dict):
        raise ValueError(f"channel {value!r} is not an object")
    # ChannelKind raises ValueError for a kind it does not know
    kind = ChannelKind(_text(value.get("kind")))
    return ChannelInfo(_text(value.get("name")), kind, _text(value.get("unit")), _text(value.get("site")))


def device_info_from_json(path: Path, data: object) -> DeviceInfo:
    """Return the :class:`DeviceInfo` described by a dict from :func:`device_info_to_json`.

    Parameters
    ----------
    path : Path
        The recording the dict comes from (named in errors).
    data : object
        The parsed JSON value.

    Raises
    ------
    RecordingError
        When the value does not describe a device.
    """
    try:
        if not isinstance(data, dict) or not isinstance(data.get("streams"), list):
            raise ValueError("expected an object with a list of streams")
        device_id = _text(data.get("device_id"))
        streams = []
        for s in data["streams"]:
            if not isinstance(s, dict) or not isinstance(s.get("channels"), list):
                raise ValueError(f"stream {s!r} has no list of channels")
            rate_hz = s.get("sample_rate_hz")
            if not isinstance(rate_hz, int | float) or isinstance(rate_hz, bool) or not math.isfinite(rate_hz):
                raise ValueError(f"sample_rate_hz {rate_hz!r} is not a number")
            stream_id = s.get("stream_id")
            if type(stream_id) is not int:
                raise ValueError(f"stream_id {stream_id!r} is not an integer")
            channels = tuple(_channel(c) for c in s["channels"])
            streams.append(StreamInfo(_text(s.get("name")), float(rate_hz), channels, device_id, stream_id))
        firmware = _int_list(data.get("firmware_version"), 3)
        protocol = _int_list(data.get("protocol_version"), 2)
        return DeviceInfo(
            device_id=device_id,
            firmware_version=(firmware[0], firmware[1], firmware[2]),
            board_profile=_text(data.get("board_profile")),
            streams=tuple(streams),
            protocol_version=(protocol[0], protocol[1]),
        )
    except ValueError as exc:
        raise RecordingError(path, f"{META_FILE} holds an invalid device description: {exc}") from None
