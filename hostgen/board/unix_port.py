"""The MicroPython unix port as a stand-in board: what it compiles to, and the heap it is given."""

from __future__ import annotations

UNIX_PORT_ARCH = "x64"  # the unix port's native code: what viper compiles to here
WORD_SIZE_FACTOR = 2  # the 64-bit port's objects and GC blocks are at most twice a 32-bit board's


def unix_heap_bytes(board) -> int:
    """The heap a unix-port run gets: the board's (32-bit) figure, doubled for the 64-bit port.

    Board files state 32-bit heaps; the same firmware on the 64-bit unix port needs up to twice
    (measured: 1.4x for the tier-1 firmware with diag and selftest). Whether a build fits a 32-bit
    board is counted at build time (hostgen.codegen.tier2_files), not measured here.
    """
    return WORD_SIZE_FACTOR * board["micropython"]["heap_bytes"]
