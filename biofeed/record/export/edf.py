"""Export a recording to one EDF+ or BDF+ file: every stream at its own rate, events as annotations.

Two passes over ``frames.bin``, each in bounded memory. The first (:func:`survey_recording`) finds
each stream's span, gaps and value range; from them come the data record duration (the longest of
at most 1 s, and at most 61440 bytes per record where possible, that holds a whole number of
samples of every stream), the physical range of each channel (symmetric about 0: plus and minus its
largest magnitude, rounded outwards to the 8 characters of the header, over the digital range
+-(2^15 - 1) or +-(2^23 - 1), so that physical 0 is digital 0) and the annotation space per
record. The second pass quantises each block as it comes and writes each data record as soon as
every stream has filled it.

The signal must be continuous in EDF, so every sample the recording does not have (a gap, before a
stream's first sample, after its last) is written as 0 and annotated with its duration
(``gap <stream>: N samples lost (... s), filled with 0`` or ``no_data <stream> ..., filled with 0``):
nothing is bridged silently.

Resolution: a channel's digital step is ``(physical_max - physical_min) / (digital_max -
digital_min)``, i.e. its largest magnitude over 2^15 - 1 (EDF) or 2^23 - 1 (BDF). BDF keeps every
device count of an int24 or int16 stream; EDF's 16 bits cost resolution when a channel's largest
magnitude exceeds 32767 device steps (an int24 EMG channel beyond about 0.7 mV on the simulator's
0.022 uV steps), and the export then says so in one line.
"""

from __future__ import annotations

import datetime
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt

from biofeed.blocks import Block
from biofeed.errors import RecordingError
from biofeed.record.export.edf_file import (
    BDF_DIGITAL_RANGE,
    EDF_DIGITAL_RANGE,
    EdfAnnotation,
    EdfFileWriter,
    EdfSignalHeader,
    format_header_number,
    format_seconds,
    tal_bytes,
)
from biofeed.record.export.events import ExportEvent, collect_export_events
from biofeed.record.export.identity import ClientIdentity, edf_ascii, edf_date
from biofeed.record.reader import Recording
from biofeed.record.stream_reader import (
    LayoutBlock,
    RecordingSurvey,
    StreamLayout,
    StreamSurvey,
    read_stream_items,
    survey_recording,
)

__all__ = [
    "FILL_VALUE",
    "MAX_RECORD_BYTES",
    "ChannelResolution",
    "edf_label",
    "export_edf",
    "record_duration_s",
    "resolution_warning",
]

FILL_VALUE = 0.0
"""Physical value written for every sample the recording does not have (annotated)."""

MAX_RECORD_BYTES = 61440
"""The EDF specification's advice for the largest data record."""

_LOSS_TOLERANCE = 1.01  # header values are rounded to 8 characters; ignore steps this close to the LSB
_LABEL_CHARS = 16


def _exact_rate(layout: StreamLayout) -> Fraction:
    # rates travel in millihertz on the wire, so a thousandth of a hertz is exact
    return Fraction(round(layout.sample_rate_hz * 1000), 1000)


def record_duration_s(layouts: Sequence[StreamLayout], *, bdf: bool) -> Fraction:
    """Return the data record duration: a whole number of samples of every stream in each record.

    The longest multiple of the smallest such duration that is at most 1 s and keeps a record within
    :data:`MAX_RECORD_BYTES`; the smallest one when even it exceeds them.
    """
    rates = [_exact_rate(layout) for layout in layouts]
    # rate * d must be whole for every rate p/q, so d is a multiple of q/p for each; and d must be a
    # whole number of milliseconds to be written exactly: d is a multiple of lcm(q_i) / gcd(p_i, 1000)
    base = Fraction(math.lcm(*(r.denominator for r in rates)), math.gcd(1000, *(r.numerator for r in rates)))
    bytes_per_base = sum(int(r * base) * layout.n_channels for r, layout in zip(rates, layouts, strict=True))
    bytes_per_base *= 3 if bdf else 2
    best = base
    k = 2
    while base * k <= 1 and bytes_per_base * k <= MAX_RECORD_BYTES:
        best = base * k
        k += 1
    return best


def edf_label(stream: str, channel: str) -> str:
    """Return the EDF signal label of a channel: ``<stream>.<channel>`` in at most 16 ASCII characters.

    A leading ``imu_`` is dropped from the stream name (``imu_thoracic``, ``acc_x`` ->
    ``thoracic.acc_x``); a stream name still too long is cut.
    """
    short = stream.removeprefix("imu_")
    room = _LABEL_CHARS - len(channel) - 1
    label = f"{short[: max(room, 1)]}.{channel}" if room > 0 else channel
    return edf_ascii(label)[:_LABEL_CHARS]


def _unique_labels(labels: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for label in labels:
        candidate, n = label, 1
        while candidate in seen:
            n += 1
            suffix = f"~{n}"
            candidate = label[: _LABEL_CHARS - len(suffix)] + suffix
        seen.add(candidate)
        out.append(candidate)
    return out


@dataclass(frozen=True)
class ChannelResolution:
    """How finely a file stores one channel compared with the device.

    Attributes
    ----------
    label : str
        The signal label.
    unit : str
        Physical unit.
    step : float
        Physical value of one digital step of the file.
    lsb : float
        Physical value of one device count.
    """

    label: str
    unit: str
    step: float
    lsb: float

    @property
    def loss_factor(self) -> float:
        """File step over device step; above 1 the file is coarser than the device."""
        return self.step / self.lsb


def resolution_warning(resolutions: Sequence[ChannelResolution], *, bdf: bool) -> str | None:
    """Return one line saying which channels lose resolution and how much, or None when none do."""
    lossy = [r for r in resolutions if r.loss_factor > _LOSS_TOLERANCE]
    if not lossy:
        return None
    worst = max(lossy, key=lambda r: r.loss_factor)
    fix = "" if bdf else "; --to bdf keeps full resolution"
    return (
        f"{'BDF' if bdf else 'EDF'} stores {24 if bdf else 16} bits per sample: {len(lossy)} of "
        f"{len(resolutions)} channels lose resolution (worst {worst.label}: steps of {worst.step:.3g} "
        f"{worst.unit}, {worst.loss_factor:.3g}x the device's {worst.lsb:.3g} {worst.unit}){fix}"
    )


def _signal_headers(
    streams: Sequence[StreamSurvey], duration_s: Fraction, *, bdf: bool
) -> tuple[list[EdfSignalHeader], list[ChannelResolution]]:
    # symmetric ranges put physical 0 on digital 0, so the fill value reads back as 0
    digital_max = (BDF_DIGITAL_RANGE if bdf else EDF_DIGITAL_RANGE)[1]
    labels = _unique_labels([edf_label(s.layout.name, c.name) for s in streams for c in s.layout.info.channels])
    headers: list[EdfSignalHeader] = []
    resolutions: list[ChannelResolution] = []
    for stream in streams:
        n_per_record = int(_exact_rate(stream.layout) * duration_s)
        for k, channel in enumerate(stream.layout.info.channels):
            lsb = abs(stream.layout.lsb[k])
            peak = max(abs(float(stream.min_value[k])), abs(float(stream.max_value[k])), abs(FILL_VALUE)) or lsb
            # the negative bound in 8 characters, so that its magnitude fits as the positive one
            physical_min = format_header_number(-peak, round_up=False)
            header = EdfSignalHeader(
                label=labels[len(headers)],
                transducer=f"{channel.kind} {channel.site}".strip(),
                physical_dimension=channel.unit,
                physical_min=physical_min,
                physical_max=physical_min.removeprefix("-"),
                digital_min=-digital_max,
                digital_max=digital_max,
                samples_per_record=n_per_record,
            )
            headers.append(header)
            resolutions.append(ChannelResolution(header.label, channel.unit, header.gain, lsb))
    return headers, resolutions


def _annotations(
    events: Sequence[ExportEvent], streams: Sequence[StreamSurvey], t0_s: Fraction, end_s: Fraction
) -> list[EdfAnnotation]:
    total_s = float(end_s - t0_s)
    out = []
    for event in events:
        file_time_s = event.time_s - float(t0_s)
        onset_s = min(max(file_time_s, 0.0), total_s)
        text = event.text + (", filled with 0" if event.type == "gap" and event.source == "decoder" else "")
        if onset_s != file_time_s:
            # readers drop annotations outside the data: keep it at the edge and say where it was
            text += f" [at {file_time_s:g} s, outside the data]"
        out.append(EdfAnnotation(onset_s, min(event.duration_s, total_s - onset_s), text))
    for stream in streams:
        rate = _exact_rate(stream.layout)
        spans = ((t0_s, stream.first_index / rate), (stream.end_index / rate, end_s))
        for start_s, stop_s in spans:
            if stop_s > start_s:
                text = f"no_data {stream.layout.name}: no samples for {float(stop_s - start_s):g} s, filled with 0"
                out.append(EdfAnnotation(float(start_s - t0_s), float(stop_s - start_s), text))
    out.sort(key=lambda a: a.onset_s)
    return out


def _pack_annotations(
    annotations: Sequence[EdfAnnotation], n_records: int, duration_s: Fraction
) -> tuple[dict[int, list[EdfAnnotation]], int]:
    """Place each annotation in the record of its onset, or the next with room; return them and the bytes per record.

    The room per record starts at the average need and doubles until everything fits, so a burst of
    events spills into the following records instead of making every record large.
    """
    sizes = [len(tal_bytes(a)) for a in annotations]
    timekeeping_bytes = len(format_seconds((n_records - 1) * duration_s)) + 4
    room = max([*sizes, math.ceil(sum(sizes) / n_records)], default=0)
    while True:
        placed: dict[int, list[EdfAnnotation]] = {}
        used = [0] * n_records
        record = 0
        fits = True
        for annotation, size in zip(annotations, sizes, strict=True):
            record = max(record, min(int(Fraction(annotation.onset_s) / duration_s), n_records - 1))
            while record < n_records and used[record] + size > room:
                record += 1
            if record == n_records:
                fits = False
                break
            used[record] += size
            placed.setdefault(record, []).append(annotation)
        if fits:
            return placed, timekeeping_bytes + room
        room *= 2


class _SignalAssembler:
    """One stream's samples from its first sample in the file to its last, handed out a record at a time.

    Samples wait as physical values and are quantised a whole record at once (per block it would
    cost a numpy call per 10 ms packet).
    """

    def __init__(
        self, survey: StreamSurvey, headers: Sequence[EdfSignalHeader], t0_s: Fraction, n_records: int
    ) -> None:
        rate = _exact_rate(survey.layout)
        self.samples_per_record = headers[0].samples_per_record
        self.base_index = int(t0_s * rate)
        self.stop_index = survey.end_index  # blocks appended after the survey (a live recording) are left out
        self.cursor = self.base_index
        end_index = self.base_index + n_records * self.samples_per_record
        # sample ranges known to hold no data: filled without waiting for blocks
        self.absent = deque(
            [(self.base_index, survey.first_index)]
            + [(start, start + n) for start, n in survey.gaps]
            + [(survey.end_index, end_index)]
        )
        self.n_channels = len(headers)
        self.physical_min = np.array([[float(h.physical_min)] for h in headers])
        self.gain = np.array([[h.gain] for h in headers])
        self.digital_min = np.array([[h.digital_min] for h in headers])
        self.digital_max = np.array([[h.digital_max] for h in headers])
        self.pending: deque[npt.NDArray[np.float64]] = deque()

    def _append(self, physical: npt.NDArray[np.float64]) -> None:
        if physical.shape[1]:
            self.pending.append(physical)
            self.cursor += physical.shape[1]

    def _append_fill(self, n_samples: int) -> None:
        self._append(np.full((self.n_channels, n_samples), FILL_VALUE))

    def add(self, block: Block) -> None:
        """Append a block, filling any samples missing before it."""
        if block.first_index >= self.stop_index:
            return
        data = block.data[:, max(self.cursor - block.first_index, 0) : max(self.stop_index - block.first_index, 0)]
        first_index = max(block.first_index, self.cursor)
        if first_index > self.cursor:
            self._append_fill(first_index - self.cursor)
        self._append(data)

    def ready(self, record_index: int) -> bool:
        """Fill known-absent samples up to the end of a record; True once the record is complete."""
        target = self.base_index + (record_index + 1) * self.samples_per_record
        while self.cursor < target and self.absent:
            start, stop = self.absent[0]
            if stop <= self.cursor:
                self.absent.popleft()
            elif start <= self.cursor:
                self._append_fill(min(stop, target) - self.cursor)
            else:
                break
        return self.cursor >= target

    def force(self, record_index: int) -> None:
        """Fill whatever is still missing of a record (samples that never came)."""
        target = self.base_index + (record_index + 1) * self.samples_per_record
        if self.cursor < target:
            self._append_fill(target - self.cursor)

    def take(self) -> npt.NDArray[np.int32]:
        """Remove one record's samples and return them quantised, shape (n_channels, samples_per_record)."""
        n_needed = self.samples_per_record
        parts = []
        while n_needed:
            head = self.pending[0]
            if head.shape[1] <= n_needed:
                parts.append(self.pending.popleft())
                n_needed -= head.shape[1]
            else:
                parts.append(head[:, :n_needed])
                self.pending[0] = head[:, n_needed:]
                n_needed = 0
        physical = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        digital = np.rint((physical - self.physical_min) / self.gain) + self.digital_min
        clipped: npt.NDArray[np.int32] = np.clip(digital, self.digital_min, self.digital_max).astype(np.int32)
        return clipped


def _records(streams: Sequence[StreamSurvey], *, bdf: bool) -> tuple[Fraction, Fraction, int]:
    """Data record duration, device time of the file's start and number of records."""
    duration_s = record_duration_s([s.layout for s in streams], bdf=bdf)
    start_s = min(Fraction(s.first_index) / _exact_rate(s.layout) for s in streams)
    stop_s = max(Fraction(s.end_index) / _exact_rate(s.layout) for s in streams)
    t0_s = math.floor(start_s / duration_s) * duration_s
    return duration_s, t0_s, math.ceil((stop_s - t0_s) / duration_s)


def _write_records(
    recording: Recording,
    writer: EdfFileWriter,
    assemblers: dict[str, _SignalAssembler],
    annotations: dict[int, list[EdfAnnotation]],
) -> None:
    """Second pass: feed every block to its stream and write each record once every stream has filled it."""

    def write(record_index: int) -> None:
        rows = [row for a in assemblers.values() for row in a.take()]
        writer.write_record(rows, annotations.get(record_index, []))

    record_index = 0
    for item in read_stream_items(recording):
        if not isinstance(item, LayoutBlock) or item.layout.name not in assemblers:
            continue
        assemblers[item.layout.name].add(item.block)
        while record_index < writer.n_records and all(a.ready(record_index) for a in assemblers.values()):
            write(record_index)
            record_index += 1
    while record_index < writer.n_records:
        for assembler in assemblers.values():
            assembler.ready(record_index)
            assembler.force(record_index)
        write(record_index)
        record_index += 1


def _start_datetime(recording: Recording, survey: RecordingSurvey, t0_s: Fraction) -> datetime.datetime:
    if survey.host_minus_device_s is not None:
        start = datetime.datetime.fromtimestamp(float(t0_s) + survey.host_minus_device_s, datetime.UTC)
    else:
        created = recording.meta.get("created")
        try:
            start = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            start = datetime.datetime(1985, 1, 1, tzinfo=datetime.UTC)
    return start.replace(microsecond=0)


def _recording_field(recording: Recording, start: datetime.datetime) -> str:
    device = recording.meta.get("device") or {}
    equipment = f"{device.get('board_profile', 'unknown')}:{device.get('device_id', 'unknown')}"
    equipment = "_".join(edf_ascii(equipment).split()) or "X"
    return f"Startdate {edf_date(start.date())} X X {equipment} biofeed"[:80]


def export_edf(
    recording: Recording,
    out: Path,
    *,
    bdf: bool,
    identity: ClientIdentity,
    anonymize: bool,
    warn: Callable[[str], None],
) -> Path:
    """Write a recording as one EDF+C (``bdf=False``) or BDF+C file.

    Parameters
    ----------
    recording : Recording
        The opened recording.
    out : Path
        The file to write; must not exist. Written as ``<out>.partial`` and renamed when complete.
    bdf : bool
        BDF+ (24-bit) instead of EDF+ (16-bit).
    identity : ClientIdentity
        The client, for the EDF+ patient field.
    anonymize : bool
        Write the patient field as ``X X X X`` and redact the identity from annotation texts.
    warn : callable taking str
        Receives one line when the format costs resolution.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    RecordingError
        When the recording has no samples, or the file cannot be written.
    """
    survey = survey_recording(recording)
    streams = survey.streams
    if not streams:
        raise RecordingError(recording.path, "no samples to export (no INFO, or no sample packets after it)")
    duration_s, t0_s, n_records = _records(streams, bdf=bdf)
    end_s = t0_s + n_records * duration_s
    headers, resolutions = _signal_headers(streams, duration_s, bdf=bdf)
    warning = resolution_warning(resolutions, bdf=bdf)
    if warning is not None:
        warn(warning)
    events = collect_export_events(recording, survey, redact_for=identity if anonymize else None)
    placed, annotation_bytes = _pack_annotations(_annotations(events, streams, t0_s, end_s), n_records, duration_s)
    start = _start_datetime(recording, survey, t0_s)
    patient = (ClientIdentity() if anonymize else identity).edf_patient_field()
    assemblers: dict[str, _SignalAssembler] = {}
    offset = 0
    for stream in streams:
        n_channels = stream.layout.n_channels
        assemblers[stream.layout.name] = _SignalAssembler(
            stream, headers[offset : offset + n_channels], t0_s, n_records
        )
        offset += n_channels
    partial = out.with_name(out.name + ".partial")
    try:
        with EdfFileWriter(
            partial,
            bdf=bdf,
            patient=patient,
            recording=_recording_field(recording, start),
            start=start,
            record_duration_s=duration_s,
            signals=headers,
            n_records=n_records,
            annotation_bytes=annotation_bytes,
        ) as writer:
            _write_records(recording, writer, assemblers, placed)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise RecordingError(out, f"cannot write the export: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out
