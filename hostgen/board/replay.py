"""The firmware on the MicroPython unix port: a workspace to run it in, and replay of a recording."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import numpy as np

from hostgen.board.image import compile_mpy, firmware_files
from hostgen.board.packets import Packet, StreamDecoder
from hostgen.board.unix_port import UNIX_PORT_ARCH, unix_heap_bytes
from hostgen.config.board import Board
from hostgen.errors import HostgenError
from hostgen.paths import MPY_DIR
from hostgen.util.tools import micropython_executable
from hostgen.util.workdir import WorkDirectory

RUNNER = MPY_DIR / "replay.py"


class FirmwareWorkspace(WorkDirectory):
    """A board's firmware compiled for the unix port (code/), and a filesystem to run it in (fs/)."""

    def __init__(self, board: Board, app_path: str | None = None, extra_files: dict[str, bytes] | None = None,
                 modules: dict[str, bytes] | None = None):
        self.board = board
        super().__init__("faultline-fw-")
        self.code = self.workdir / "code"
        self.fs = self.workdir / "fs"
        self.code.mkdir()
        self.fs.mkdir()
        if modules is None:
            modules = firmware_files(board, app_path, f"hostgen replay --board {board.name}")
        sources = modules | (extra_files or {})
        for name, data in compile_mpy(sources, UNIX_PORT_ARCH).items():
            (self.code / name).write_bytes(data)
        self.heap_bytes = unix_heap_bytes(board)

    def run(self, arguments: list[str], env: dict[str, str] | None = None, heap_bytes: int | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
        command = [micropython_executable(), "-X", f"heapsize={heap_bytes or self.heap_bytes}", *arguments]
        return subprocess.run(command, cwd=self.fs, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)

    def run_code(self, code: str, env: dict[str, str] | None = None, heap_bytes: int | None = None) -> subprocess.CompletedProcess:
        """Run MicroPython `code` with the firmware importable."""
        prelude = f"import sys\nsys.path.insert(0, {str(self.code)!r})\n"
        return self.run(["-c", prelude + code], env, heap_bytes)


@dataclass
class ReplayResult:
    heap_bytes: int
    packets: list[Packet]
    bad_frames: int
    link_bytes: int
    samples: int
    blocks: int
    loop_p50_us: int
    loop_p99_us: int
    loop_max_us: int
    heap_peak_bytes: int
    heap_after_start_bytes: int
    console: str


def replay(board: Board, recording: np.ndarray, app_path: str | None = None, heap_bytes: int | None = None,
           config_json: str | None = None, extra_files: dict[str, bytes] | None = None,
           modules: dict[str, bytes] | None = None) -> ReplayResult:
    """Run the firmware over `recording` ((samples, channels) int16) as fast as the VM goes.

    `modules`: the firmware to run (e.g. a build's, with its model); default: the app's tier-1 firmware.
    """
    with FirmwareWorkspace(board, app_path, extra_files, modules) as workspace:
        if config_json is not None:
            (workspace.fs / "config.json").write_text(config_json)
        scenario = workspace.workdir / "scenario.i16"
        np.ascontiguousarray(recording, dtype=np.int16).tofile(scenario)
        link = workspace.workdir / "packets.bin"
        env = {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(link)}
        result = workspace.run([str(RUNNER), str(workspace.code)], env, heap_bytes)
        heap = heap_bytes or workspace.heap_bytes
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise HostgenError(f"firmware failed on the MicroPython unix port ({heap}-byte heap): {detail[-1] if detail else result.returncode}")
        figures = next(line.split()[1:] for line in result.stdout.splitlines() if line.startswith("figures "))
        decoder = StreamDecoder()
        packets = decoder.feed(link.read_bytes())
        blocks, p50, p99, worst, peak, baseline = map(int, figures)
        console = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("figures "))
        return ReplayResult(heap, packets, decoder.bad_frames, decoder.bytes_in, len(recording), blocks, p50, p99, worst,
                            peak, baseline, console)
