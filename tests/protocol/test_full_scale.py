"""The ADC full scale of each channel, from the INFO's sample format and scale (issue 10, item 3).

A clipped sample sits at its format's integer extreme; the decoded value there must equal the
channel's ``full_scale`` exactly, so the pipeline's clipping check (``data >= high``) sees it.
"""

from __future__ import annotations

import numpy as np
import pytest

from biofeed.blocks import Block, ChannelInfo, ChannelKind
from biofeed.protocol import (
    ChannelFormat,
    InfoPayload,
    Packet,
    PacketType,
    SampleFormat,
    StreamFormat,
    encode_frame,
    encode_samples,
)
from biofeed.protocol.decoder import Decoder

SCALE_UV = 0.1
"""Not a float32: the wire rounds it, and the full scale must follow the wire."""


def _info(sample_format: SampleFormat, scales: tuple[float, ...]) -> InfoPayload:
    channels = tuple(ChannelFormat(ChannelKind.EMG, scale, f"ch{k}") for k, scale in enumerate(scales))
    return InfoPayload((1, 0, 0), "dev", "no-such-board", (StreamFormat(1, "emg", sample_format, 2_000_000, channels),))


@pytest.mark.parametrize(
    ("sample_format", "scale", "expected"),
    [
        (SampleFormat.INT24, 0.5, (-(2.0**23) * 0.5, (2.0**23 - 1) * 0.5)),
        (SampleFormat.INT16, 0.25, (-32768 * 0.25, 32767 * 0.25)),
        (SampleFormat.INT16, -0.25, (-32767 * 0.25, 32768 * 0.25)),  # an inverting front end
    ],
)
def test_each_channel_carries_its_formats_integer_range_times_its_scale(sample_format, scale, expected):
    (stream,) = _info(sample_format, (scale,)).to_device_info().streams
    assert stream.channels[0].full_scale == expected


def test_the_decoded_extreme_counts_are_exactly_the_full_scale():
    info = _info(SampleFormat.INT24, (SCALE_UV, 0.5))
    lo, hi = SampleFormat.INT24.count_range
    counts = np.array([[lo, hi, 0], [hi, lo, 0]])
    frames = [
        encode_frame(Packet(PacketType.INFO, 0, 0, 0, info.to_payload())),
        encode_frame(Packet(PacketType.EMG, 1, 1, 0, encode_samples(counts, SampleFormat.INT24))),
    ]
    items = list(Decoder().feed(b"\x00" + b"".join(frames)))
    (block,) = [item for item in items if isinstance(item, Block)]
    for row, channel in zip(block.data, block.info.channels, strict=True):
        assert channel.full_scale is not None
        assert {row.min(), row.max()} == set(channel.full_scale)
    assert block.info.channels[0].full_scale != (lo * SCALE_UV, hi * SCALE_UV)  # float32 on the wire


def test_the_full_scale_is_not_part_of_a_channels_identity():
    named = ChannelInfo("es_left", ChannelKind.EMG, "uV")
    assert ChannelInfo("es_left", ChannelKind.EMG, "uV", full_scale=(-1.0, 1.0)) == named
    assert named.full_scale is None  # streams that did not come over the wire, and recordings' meta
