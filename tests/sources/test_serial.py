"""SerialSource over a real pseudo-terminal (and pyserial's loop:// for argument checks)."""

from __future__ import annotations

import contextlib
import os
import threading
import tty

import pytest
import serial

from biofeed.errors import DeviceNotFoundError, SourceLost
from biofeed.protocol import ControlCommand, ControlPayload, PacketType, decode_frame
from biofeed.sources import open_source
from biofeed.sources.base import SourceUrl
from biofeed.sources.serial import DEFAULT_BAUD, SerialSource


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    yield master, path
    for fd in (master, slave):
        with contextlib.suppress(OSError):  # a test may have closed the master already
            os.close(fd)


def _read_exactly(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += os.read(fd, n - len(data))
    return data


def test_every_byte_written_to_the_port_arrives_in_order(pty_pair):
    master, path = pty_pair
    payload = bytes(range(256)) * 64  # includes 0x00, 0x0d, 0x11/0x13 (XON/XOFF), 0x7f
    source = SerialSource(path)
    writer = threading.Thread(target=os.write, args=(master, payload))
    writer.start()
    received = bytearray()
    for chunk in source.chunks():
        received += chunk.data
        if len(received) >= len(payload):
            source.close()
    writer.join()
    assert bytes(received) == payload


def test_opening_asks_the_device_for_its_info(pty_pair):
    master, path = pty_pair
    source = SerialSource(path)
    sent = _read_exactly(master, 1 + 17)  # leading 0x00, then one CONTROL frame with its delimiter
    source.close()
    frames = [f for f in sent.split(b"\x00") if f]
    assert len(frames) == 1
    packet = decode_frame(frames[0])
    assert packet.type == PacketType.CONTROL
    assert ControlPayload.from_payload(packet.payload).command is ControlCommand.REQUEST_INFO


def test_unplugging_raises_source_lost_after_the_data_that_arrived(pty_pair):
    master, path = pty_pair
    source = SerialSource(path)
    os.write(master, b"hello\x00")
    received = bytearray()
    with pytest.raises(SourceLost, match="went away"):
        for chunk in source.chunks():
            received += chunk.data
            if chunk.data.endswith(b"\x00"):
                os.close(master)
    assert bytes(received) == b"hello\x00"


def test_a_quiet_port_yields_empty_chunks_so_the_loop_keeps_time(pty_pair):
    _, path = pty_pair
    source = SerialSource(path)
    chunks = source.chunks()
    assert [next(chunks).data for _ in range(3)] == [b"", b"", b""]
    source.close()


def test_close_from_another_thread_ends_iteration_quietly(pty_pair):
    _, path = pty_pair
    source = SerialSource(path)
    started = threading.Event()
    ended = threading.Event()

    def consume() -> None:
        started.set()
        for _ in source.chunks():
            pass
        ended.set()

    thread = threading.Thread(target=consume)
    thread.start()
    started.wait(5)
    source.close()
    thread.join(5)
    assert ended.is_set()


def test_missing_port_is_device_not_found():
    with pytest.raises(DeviceNotFoundError, match="no such port") as info:
        SerialSource("/dev/does-not-exist-biofeed")
    assert info.value.identifier == "/dev/does-not-exist-biofeed"


def test_permission_denied_says_what_to_do():
    def refuse(port: str, **kwargs: object) -> serial.Serial:
        raise serial.SerialException(13, f"could not open port {port}: [Errno 13] Permission denied: '{port}'")

    with pytest.raises(DeviceNotFoundError, match="dialout"):
        SerialSource("/dev/ttyUSB9", serial_factory=refuse)


def test_loop_url_round_trip():
    source = SerialSource("loop://")
    first = next(c for c in source.chunks() if c.data)  # the REQUEST_INFO it wrote comes straight back
    assert first.data.startswith(b"\x00")
    source.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("serial://", "needs a port"),
        ("serial:///dev/x?baud=fast", "whole number"),
        ("serial:///dev/x?baud=0", "at least 1"),
        ("serial:///dev/x?baud=9600.5", "whole number"),
        ("serial:///dev/x?parity=E", "does not take parity"),
        ("usb:///dev/x", "unknown source scheme"),
        ("/dev/ttyUSB0", "not a source URL"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(ValueError, match=message):
        open_source(url)


def test_url_defaults():
    parsed = SourceUrl.parse("serial:///dev/ttyACM0")
    assert parsed.target == "/dev/ttyACM0"
    assert parsed.number("baud", DEFAULT_BAUD) == DEFAULT_BAUD
