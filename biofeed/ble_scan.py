"""The BLE part of ``biofeed scan``: biofeed devices in range, strongest signal first.

One line per device, ``ble://ADDRESS<TAB>NAME<TAB>RSSI -60 dBm``, so the first column is the URL to
record from. A machine without usable Bluetooth gets one line saying why instead of an error, so
the serial ports listed before it still count.
"""

from __future__ import annotations

from biofeed.errors import SourceError
from biofeed.sources.ble import BleLink, scan_ble

__all__ = ["DEFAULT_BLE_SCAN_S", "ble_scan_lines"]

DEFAULT_BLE_SCAN_S = 5.0
"""Seconds ``biofeed scan`` listens for advertisements: several advertising intervals of a slow board."""


def ble_scan_lines(timeout_s: float = DEFAULT_BLE_SCAN_S, *, link: BleLink | None = None) -> list[str]:
    """Scan for biofeed devices and describe each in one line.

    Parameters
    ----------
    timeout_s : float
        Seconds to scan.
    link : BleLink or None
        The radio; bleak's when None.

    Returns
    -------
    list of str
        ``ble://ADDRESS<TAB>NAME<TAB>RSSI N dBm`` per device (``(no name)``, ``RSSI ?`` when unknown), or
        one line saying that none was found or why Bluetooth could not be used.

    Raises
    ------
    ValueError
        A non-positive ``timeout_s``.
    """
    try:
        devices = scan_ble(timeout_s, link=link)
    except SourceError as exc:
        return [f"no BLE scan: {exc}"]
    if not devices:
        return [f"no biofeed BLE devices found in {timeout_s:g} s"]
    return [
        f"ble://{d.address}\t{d.name or '(no name)'}\tRSSI {'?' if d.rssi_dbm is None else d.rssi_dbm} dBm"
        for d in devices
    ]
