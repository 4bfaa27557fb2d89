"""A Lab Streaming Layer stream as a source: ``lsl://NAME?type=EMG&timeout=5&buffer=2&jitter=0.02&kind=emg``.

An LSL stream has no wire frames, so this source encodes what it pulls as the frames of a biofeed
board (:mod:`biofeed.sources.sample_frames`): an INFO built from the stream's metadata, then sample
packets. Recording, decoding, replay and export stay one path; a recording of an LSL stream
replays like any other.

The virtual device has id ``lsl:SOURCE_ID`` (the stream name when the stream has no source id),
board profile ``lsl`` and one stream, ``emg`` when every channel is EMG-like and ``imu`` otherwise.
Channels take their label, unit, type and site from the stream's ``desc/channels/channel``
elements; a channel without a type takes the stream's type. Electrophysiology types (EMG, EXG,
EEG, ECG, EOG) travel as EMG channels in uV; ACC (g), GYRO (deg/s), MAG (uT), QUAT and ANGLE (deg)
as their kinds. Values in other known units (mV, V, m/s^2, rad/s, ...) are converted; a channel
without a unit is taken to be in its kind's unit. Device time is the sample count since the first
sample pulled; :attr:`LslSource.first_stamp_s` keeps the LSL time stamp of that sample.

Parameters
----------
``type``
    Resolve only a stream of this LSL type.
``timeout``
    Seconds to wait for the stream to be found (default 5).
``buffer``
    Whole seconds the inlet buffers (default 2, at least 1). LSL inlets buffer 360 s by default,
    so a consumer minutes behind looks healthy while showing stale data. biofeed's loop keeps up
    with far more than real time, so a backlog of 2 s already means a stall: the inlet then drops
    the oldest samples, and the source reports them as a gap.
``jitter``
    Seconds of time-stamp jitter tolerated before a gap is reported (default 0.02). LSL carries no
    sample counter, so lost samples are found from the time stamps against the nominal rate
    (:class:`TimestampGapDetector`). Small losses add up until they pass the tolerance, so they are
    counted even when each one is smaller.
``kind``
    ``emg``, ``acc``, ``gyro``, ``mag``, ``quat`` or ``angle``: the kind of every channel, for
    streams whose metadata says nothing usable.

The inlet is opened with ``recover=False``: if the stream goes away, :meth:`LslSource.chunks`
raises :class:`~biofeed.errors.SourceLost` and the recording ends with everything received.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt

from biofeed.blocks import UNIT_BY_KIND, ChannelInfo, ChannelKind, StreamInfo
from biofeed.errors import DeviceNotFoundError, SourceError, SourceLost
from biofeed.sources.base import SourceUrl, TimedChunk
from biofeed.sources.sample_frames import SampleFramer

__all__ = [
    "LSL_PARAMETERS",
    "LslSource",
    "TimestampGapDetector",
    "import_pylsl",
    "lsl_unit",
]

log = logging.getLogger(__name__)

LSL_PARAMETERS: frozenset[str] = frozenset({"type", "timeout", "buffer", "jitter", "kind"})
"""Query parameters ``lsl://`` takes."""

_PULL_TIMEOUT_S = 0.05  # an empty chunk at least every 100 ms (Source protocol)
_DEFAULT_TIMEOUT_S = 5.0
_DEFAULT_BUFFER_S = 2
_DEFAULT_JITTER_S = 0.02

_KIND_BY_TYPE: dict[str, ChannelKind] = {
    **dict.fromkeys(("emg", "exg", "eeg", "ecg", "eog"), ChannelKind.EMG),
    **dict.fromkeys(("acc", "accel", "accelerometer", "accelerometers"), ChannelKind.ACC),
    **dict.fromkeys(("gyro", "gyroscope", "gyroscopes", "angular_velocity"), ChannelKind.GYRO),
    **dict.fromkeys(("mag", "magnetometer", "magnetometers"), ChannelKind.MAG),
    **dict.fromkeys(("quat", "quaternion", "quaternions"), ChannelKind.QUAT),
    **dict.fromkeys(("angle", "angles", "euler"), ChannelKind.ANGLE),
}

_FACTOR_TO_KIND_UNIT: dict[ChannelKind, dict[str, float]] = {
    ChannelKind.EMG: {
        **dict.fromkeys(("microvolts", "microvolt", "uv", "µv", "μv"), 1.0),
        **dict.fromkeys(("millivolts", "millivolt", "mv"), 1e3),
        **dict.fromkeys(("volts", "volt", "v"), 1e6),
        **dict.fromkeys(("nanovolts", "nanovolt", "nv"), 1e-3),
    },
    ChannelKind.ACC: {
        "g": 1.0,
        "mg": 1e-3,
        **dict.fromkeys(("m/s^2", "m/s2", "m/s**2", "m s-2", "meters/second^2"), 1 / 9.80665),
    },
    ChannelKind.GYRO: {
        **dict.fromkeys(("deg/s", "degrees/s", "dps", "°/s", "degrees/second", "degrees per second"), 1.0),
        **dict.fromkeys(("rad/s", "radians/s", "radians/second"), 180 / math.pi),
    },
    ChannelKind.MAG: {
        **dict.fromkeys(("ut", "µt", "μt", "microtesla", "microteslas"), 1.0),
        **dict.fromkeys(("nt", "nanotesla", "nanoteslas"), 1e-3),
        **dict.fromkeys(("gauss", "gs"), 100.0),
    },
    ChannelKind.QUAT: dict.fromkeys(("1", "unitless", "normalized", "none", "a.u."), 1.0),
    ChannelKind.ANGLE: {
        **dict.fromkeys(("deg", "degree", "degrees", "°"), 1.0),
        **dict.fromkeys(("rad", "radian", "radians"), 180 / math.pi),
    },
}

_LSL_UNIT = {"uV": "microvolts"}


def import_pylsl() -> Any:
    """Import pylsl, or explain how to install it.

    Raises
    ------
    SourceError
        When pylsl (or the liblsl it bundles) cannot be loaded.
    """
    try:
        import pylsl
    except (ImportError, RuntimeError) as exc:  # pylsl raises RuntimeError when liblsl will not load
        raise SourceError(f"Lab Streaming Layer needs pylsl: pip install 'biofeed[lsl]' ({exc})") from None
    return pylsl


def lsl_unit(unit: str) -> str:
    """A biofeed unit as an LSL description writes it: ``microvolts`` for ``uV`` (XDF, MNE-LSL), else unchanged."""
    return _LSL_UNIT.get(unit, unit)


class TimestampGapDetector:
    """Finds samples lost before they were pulled, from LSL time stamps against the nominal rate.

    Sample ``k`` after the anchor is expected at ``anchor_stamp + k / rate``. A stamp later than
    that by more than ``jitter_s`` means ``round(lateness * rate)`` samples were lost there (the
    anchor then moves to it); a stamp earlier by more than ``jitter_s`` (a sender whose clock runs
    fast, or a clock reset) only moves the anchor. Jitter averages out against the anchor while
    losses add up, so many small losses are reported once they pass the tolerance.

    Parameters
    ----------
    sample_rate_hz : float
        Nominal rate.
    jitter_s : float
        Tolerated deviation of a stamp, seconds (>= 0).

    Raises
    ------
    ValueError
        For a rate that is not positive or a negative tolerance.
    """

    def __init__(self, sample_rate_hz: float, jitter_s: float) -> None:
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        if not (math.isfinite(jitter_s) and jitter_s >= 0):
            raise ValueError(f"jitter_s must be >= 0 seconds, got {jitter_s}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.jitter_s = float(jitter_s)
        self._anchor_stamp_s: float | None = None
        self._anchor_index = 0
        self._next_index = 0

    def split(self, stamps_s: npt.ArrayLike) -> list[tuple[int, int, int]]:
        """Split the next pulled samples into contiguous runs.

        Parameters
        ----------
        stamps_s : array_like, shape (n_samples,)
            LSL time stamps of the samples, in pull order.

        Returns
        -------
        list of (start, stop, gap_before)
            Runs ``stamps_s[start:stop]`` of contiguous samples, each with the samples lost just
            before it; together they cover every sample.
        """
        stamps = np.asarray(stamps_s, dtype=np.float64)
        n = stamps.size
        runs: list[tuple[int, int, int]] = []
        if n == 0:
            return runs
        if self._anchor_stamp_s is None:
            self._anchor_stamp_s = float(stamps[0])
            self._anchor_index = self._next_index
        fs = self.sample_rate_hz
        base = self._next_index  # index of stamps[run_start]
        run_start, gap_before, k = 0, 0, 0
        while k < n:
            index = base + np.arange(k - run_start, n - run_start)
            lateness = stamps[k:] - (self._anchor_stamp_s + (index - self._anchor_index) / fs)
            off = np.flatnonzero(np.abs(lateness) > self.jitter_s)
            if not off.size:
                break
            j = k + int(off[0])
            late_s = float(lateness[off[0]])
            if late_s > 0:
                if j > run_start:
                    runs.append((run_start, j, gap_before))
                    base += j - run_start
                    run_start, gap_before = j, 0
                lost = max(1, round(late_s * fs))
                gap_before += lost
                base += lost
            self._anchor_stamp_s = float(stamps[j])
            self._anchor_index = base + j - run_start
            k = j + 1
        runs.append((run_start, n, gap_before))
        self._next_index = base + n - run_start
        return runs


def _kind_of(channel_type: str, stream_type: str, forced: ChannelKind | None, label: str) -> ChannelKind:
    if forced is not None:
        return forced
    for text in (channel_type, stream_type):
        kind = _KIND_BY_TYPE.get(text.strip().lower())
        if kind is not None:
            return kind
    raise SourceError(
        f"channel {label!r} has LSL type {channel_type or '(none)'!r} in a stream of type {stream_type!r}, "
        f"which biofeed cannot place; add kind=emg|acc|gyro|mag|quat|angle to the lsl:// URL"
    )


def _factor_to_kind_unit(unit: str, kind: ChannelKind, label: str) -> float:
    text = unit.strip()
    if not text:
        return 1.0  # no unit given: taken to be the kind's
    factors = _FACTOR_TO_KIND_UNIT[kind]
    factor = factors.get(text.lower()) or factors.get(text)
    if factor is None:
        raise SourceError(f"channel {label!r} ({kind.value}) is in {unit!r}; known units: {', '.join(sorted(factors))}")
    return factor


class LslSource:
    """Pulls one LSL stream through a bounded inlet and yields it as wire frames.

    Parameters
    ----------
    stream : pylsl.StreamInfo
        A resolved stream (from :func:`pylsl.resolve_byprop` or :meth:`from_url`).
    buffer_s : int
        Whole seconds the inlet buffers before it drops the oldest samples (>= 1).
    jitter_s : float
        Time-stamp tolerance of :class:`TimestampGapDetector`.
    kind : ChannelKind or None
        Kind of every channel, overriding the stream's metadata.
    open_timeout_s : float
        Seconds to wait for the inlet to connect and fetch the full description.
    url : str or None
        The URL to report; None builds ``lsl://NAME``.

    Attributes
    ----------
    url : str
    device_id : str
        ``lsl:SOURCE_ID``.
    first_stamp_s : float
        LSL time stamp of the first sample pulled (device time 0), NaN before it.

    Raises
    ------
    SourceError
        For a string (marker) stream, an irregular-rate stream, channels whose kind or unit cannot
        be placed, or a stream that does not answer within ``open_timeout_s``.
    ValueError
        For ``buffer_s`` < 1 or a negative ``jitter_s``.
    """

    def __init__(
        self,
        stream: Any,
        *,
        buffer_s: int = _DEFAULT_BUFFER_S,
        jitter_s: float = _DEFAULT_JITTER_S,
        kind: ChannelKind | None = None,
        open_timeout_s: float = _DEFAULT_TIMEOUT_S,
        url: str | None = None,
    ) -> None:
        lsl = import_pylsl()
        if isinstance(buffer_s, bool) or not isinstance(buffer_s, int) or buffer_s < 1:
            raise ValueError(f"buffer_s must be a whole number of seconds >= 1, got {buffer_s!r}")
        name = stream.name()
        self.url = url if url is not None else f"lsl://{name}"
        if stream.channel_format() in (lsl.cf_string, lsl.cf_undefined):
            raise SourceError(f"{self.url}: a string (marker) stream carries no samples; biofeed takes sample streams")
        rate_hz = float(stream.nominal_srate())
        if not rate_hz > 0:
            raise SourceError(f"{self.url}: the stream has an irregular rate; biofeed needs a nominal sample rate")
        self._lost_error: type[Exception] = lsl.util.LostError
        self._inlet = lsl.StreamInlet(stream, max_buflen=buffer_s, recover=False, processing_flags=lsl.proc_none)
        try:
            self._inlet.open_stream(timeout=open_timeout_s)
            full = self._inlet.info(timeout=open_timeout_s)
            stream_info, self._factors = self._describe(full, rate_hz, kind)
        except lsl.util.TimeoutError:
            self._inlet.close_stream()
            raise SourceError(f"{self.url}: the stream did not answer within {open_timeout_s:g} s") from None
        except BaseException:
            self._inlet.close_stream()
            raise
        self.device_id = stream_info.device_id
        self._stream_name = stream_info.name
        self._framer = SampleFramer(self.device_id, "lsl", [stream_info])
        self._gaps = TimestampGapDetector(rate_hz, jitter_s)
        self._max_samples = max(1, math.ceil(rate_hz * buffer_s))
        self._closed = threading.Event()
        self._running = False
        self.first_stamp_s = math.nan

    @classmethod
    def from_url(cls, url: SourceUrl) -> LslSource:
        """Resolve ``lsl://NAME?...`` (parameters in the module docstring) and open it.

        Raises
        ------
        ValueError
            An unknown parameter or a value out of range.
        DeviceNotFoundError
            No such stream within ``timeout`` seconds.
        """
        url.check_keys(set(LSL_PARAMETERS))
        if not url.target:
            raise ValueError("lsl:// needs a stream name, e.g. lsl://OpenBCI_EEG")
        timeout_s = url.number("timeout", _DEFAULT_TIMEOUT_S, minimum=0.0)
        buffer_s = url.whole_number("buffer", _DEFAULT_BUFFER_S, minimum=1)
        jitter_s = url.number("jitter", _DEFAULT_JITTER_S, minimum=0.0)
        kind: ChannelKind | None = None
        if "kind" in url.params:
            allowed = [k.value for k in ChannelKind]
            if url.params["kind"] not in allowed:
                raise ValueError(f"parameter kind={url.params['kind']!r}; allowed: {', '.join(allowed)}")
            kind = ChannelKind(url.params["kind"])
        stream_type = url.params.get("type")
        predicate = _xpath_equals("name", url.target)
        if stream_type:
            predicate += " and " + _xpath_equals("type", stream_type)
        lsl = import_pylsl()
        found = lsl.resolve_bypred(predicate, minimum=1, timeout=timeout_s)
        shown = f"lsl://{url.target}" + (f" of type {stream_type!r}" if stream_type else "")
        if not found:
            raise DeviceNotFoundError(shown, f"no Lab Streaming Layer stream found within {timeout_s:g} s")
        if len(found) > 1:
            log.warning("%d LSL streams match %s; taking source_id %r", len(found), shown, found[0].source_id())
        query = f"?{urlencode(url.params)}" if url.params else ""
        return cls(
            found[0],
            buffer_s=buffer_s,
            jitter_s=jitter_s,
            kind=kind,
            open_timeout_s=timeout_s,
            url=f"lsl://{url.target}{query}",
        )

    def _describe(
        self, full: Any, rate_hz: float, forced: ChannelKind | None
    ) -> tuple[StreamInfo, npt.NDArray[np.float64]]:
        """The stream as biofeed channels, and per channel the factor to the kind's unit, shape (n_channels, 1)."""
        n_channels = int(full.channel_count())
        stream_type = full.type()
        entries: list[tuple[str, str, str, str]] = []
        node = full.desc().child("channels").child("channel")
        while not node.empty() and len(entries) < n_channels:
            fields = (node.child_value("label"), node.child_value("type"), node.child_value("unit"))
            entries.append((*fields, node.child_value("site")))
            node = node.next_sibling("channel")
        entries += [("", "", "", "")] * (n_channels - len(entries))
        channels: list[ChannelInfo] = []
        factors: list[float] = []
        for k, (label, channel_type, unit, site) in enumerate(entries):
            name = label.strip() or f"ch{k + 1}"
            kind = _kind_of(channel_type, stream_type, forced, name)
            factors.append(_factor_to_kind_unit(unit, kind, name))
            channels.append(ChannelInfo(name, kind, UNIT_BY_KIND[kind], site.strip()))
        source_id = full.source_id() or full.name()
        stream_name = "emg" if all(c.kind is ChannelKind.EMG for c in channels) else "imu"
        info = StreamInfo(stream_name, rate_hz, tuple(channels), device_id=f"lsl:{source_id}")
        return info, np.array(factors, dtype=np.float64)[:, None]

    def chunks(self) -> Iterator[TimedChunk]:
        """Yield the INFO, then the pulled samples as frames; an empty chunk every 50 ms while idle.

        Raises
        ------
        SourceLost
            When the stream goes away.
        """
        self._running = True
        try:
            yield TimedChunk(self._framer.start(), time.time())
            while not self._closed.is_set():
                try:
                    data, stamps = self._inlet.pull_chunk(
                        timeout=_PULL_TIMEOUT_S, max_samples=self._max_samples, min_samples=1, as_numpy=True
                    )
                except self._lost_error:
                    raise SourceLost(f"{self.url}: the LSL stream went away") from None
                received_at = time.time()
                if not len(stamps):
                    yield TimedChunk(b"", received_at)
                    continue
                if math.isnan(self.first_stamp_s):
                    self.first_stamp_s = float(stamps[0])
                values = np.asarray(data, dtype=np.float64).T * self._factors
                frames = [
                    self._framer.samples(self._stream_name, values[:, start:stop], gap_before=gap)
                    for start, stop, gap in self._gaps.split(stamps)
                ]
                yield TimedChunk(b"".join(frames), received_at)
        finally:
            self._inlet.close_stream()

    def close(self) -> None:
        """Stop: ``chunks()`` returns within one pull (50 ms). Safe from another thread, and twice."""
        self._closed.set()
        if not self._running:
            self._inlet.close_stream()


def _xpath_equals(field: str, value: str) -> str:
    """An XPath 1.0 equality test for the LSL resolver (which has no escapes: pick the other quote)."""
    if "'" not in value:
        return f"{field}='{value}'"
    if '"' not in value:
        return f'{field}="{value}"'
    raise ValueError(f"an LSL {field} with both kinds of quote cannot be resolved: {value!r}")
