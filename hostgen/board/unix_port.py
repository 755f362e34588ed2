"""The MicroPython unix port as a stand-in board: what it compiles to, and the heap it is given."""

from __future__ import annotations

UNIX_PORT_ARCH = "x64"  # the unix port's native code: what viper compiles to here
UNIX_PORT_FIRMWARE_HEAP = 72 * 1024  # measured: firmware + diag + selftest need 59-64 KB on the 64-bit unix port


def unix_heap_bytes(board) -> int:
    """The heap a unix-port run gets: the board's figure, raised to what the 64-bit port needs.

    The only board below the floor is one whose figure is a 32-bit estimate (its file says so);
    callers that raise it print why.
    """
    return max(board["micropython"]["heap_bytes"], UNIX_PORT_FIRMWARE_HEAP)
