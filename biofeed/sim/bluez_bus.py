"""A private D-Bus daemon that looks like the system bus, for the fake BlueZ (docs/ble.md).

bleak's BlueZ backend talks to the *system* bus; pointing ``DBUS_SYSTEM_BUS_ADDRESS`` at this
daemon lets unmodified bleak meet :class:`biofeed.sim.bluez.FakeBluez` instead of bluetoothd, with
no root and no radio. The daemon runs from a configuration written into a new temporary folder
(short, so the socket path fits the 108-byte limit) and allows every local user to own any name
and call anything: fine for a private socket in a folder only this user can enter.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["DBUS_DAEMON", "PrivateBus"]

DBUS_DAEMON = "dbus-daemon"
"""The daemon executable looked up on PATH (Debian: package ``dbus-daemon``)."""

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""
_STOP_WAIT_S = 5.0


class PrivateBus:
    """A ``dbus-daemon`` of this process's own, with its address.

    Parameters
    ----------
    start_timeout_s : float
        Seconds to wait for the daemon to report its address.
    daemon : str
        The executable (name on PATH or path).

    Attributes
    ----------
    address : str
        The bus address (``unix:path=...,guid=...``), for ``DBUS_SYSTEM_BUS_ADDRESS``.

    Raises
    ------
    FileNotFoundError
        ``dbus-daemon`` is not installed.
    RuntimeError
        The daemon did not start or report its address in time.
    """

    def __init__(self, *, start_timeout_s: float = 10.0, daemon: str = DBUS_DAEMON) -> None:
        executable = shutil.which(daemon)
        if executable is None:
            raise FileNotFoundError(f"{daemon} not found on PATH (Debian/Ubuntu: apt install dbus-daemon)")
        self._folder = Path(tempfile.mkdtemp(prefix="biofeed-bus-"))
        config = self._folder / "bus.conf"
        config.write_text(_CONFIG.format(socket=self._folder / "socket"), encoding="utf-8")
        self._process = subprocess.Popen(
            [executable, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            self.address = self._read_address(start_timeout_s)
        except BaseException:
            self.close()
            raise

    def _read_address(self, timeout_s: float) -> str:
        stdout = self._process.stdout
        if stdout is None:
            raise RuntimeError("dbus-daemon has no stdout")
        deadline = time.monotonic() + timeout_s
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0 or not selector.select(remaining_s):
                    raise RuntimeError(f"dbus-daemon did not report its address within {timeout_s:g} s")
                byte = os.read(stdout.fileno(), 1)
                if not byte:
                    stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    raise RuntimeError(f"dbus-daemon exited at start: {stderr.strip()}")
                line += byte
        return line.decode().strip()

    def close(self) -> None:
        """Stop the daemon and remove its folder; safe to call twice."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(_STOP_WAIT_S)
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> PrivateBus:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
