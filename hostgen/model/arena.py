"""Tensor arena sizing, measured: the smallest arena the real TFLM runtime runs in.

The runtime's own allocation report can be below the smallest arena that works,
so the figure comes from trying sizes, each in a worker process that may crash.
Host figures come from a 64-bit build; a 32-bit MCU needs no more than this.
"""

from __future__ import annotations

import select
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata

from hostgen.errors import HostgenError
from hostgen.model.tflite import ModelInfo
from hostgen.util.cache import cached_json, code_key

TFLM_ALIGNMENT = 16
FIRST_GUESS_BYTES = 16 * 1024
LARGEST_TRIED_BYTES = 64 * 1024 * 1024
PROBE_TIMEOUT_S = 120
HOST_NOTE = "measured on a 64-bit host: an upper bound for a 32-bit MCU"


@dataclass(frozen=True)
class ArenaFigures:
    probed_bytes: int  # smallest arena that allocates and invokes
    reported_bytes: int  # what the runtime's RecordingMicroAllocator says it used
    reserved_bytes: int  # what the firmware reserves: probed, aligned, plus alignment slack
    probes: int


def reserved_from_probed(probed_bytes: int) -> int:
    """Round up to TFLM's alignment and add one alignment unit for an unaligned buffer start."""
    aligned = -(-probed_bytes // TFLM_ALIGNMENT) * TFLM_ALIGNMENT
    return aligned + TFLM_ALIGNMENT


class _ProbeWorker:
    """One arena_probe process, restarted whenever a probe crashes it."""

    def __init__(self, model: ModelInfo):
        self.model = model
        self.stderr = tempfile.TemporaryFile()
        self.process: subprocess.Popen | None = None

    def ask(self, command: str, size: int) -> tuple[bool, str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hostgen.model.arena_probe", str(self.model.path), str(len(self.model.inputs))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                text=True,
            )
        self.process.stdin.write(f"{command} {size}\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], PROBE_TIMEOUT_S)
        if not ready:
            self.close()
            raise HostgenError(
                f"TFLM runtime hung for {PROBE_TIMEOUT_S} s on model {self.model.path} with a {size}-byte arena"
            )
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            return False, f"runtime crashed (exit {code})"
        status, _, detail = line.strip().partition(" ")
        return status == "ok", detail

    def last_runtime_message(self) -> str:
        self.stderr.seek(0)
        lines = [line for line in self.stderr.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no message"

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def measure_arena(model: ModelInfo) -> ArenaFigures:
    """Find the smallest working arena by bisection, cached by the model and the runtime's version."""
    key = code_key(model.data, metadata.version("tflite-micro"))
    return ArenaFigures(**cached_json("arena", key, lambda: asdict(_probe(model))))


def _probe(model: ModelInfo) -> ArenaFigures:
    worker = _ProbeWorker(model)
    try:
        return _bisect(worker, model)
    finally:
        worker.close()


def _bisect(worker: _ProbeWorker, model: ModelInfo) -> ArenaFigures:
    probes = 0
    works = FIRST_GUESS_BYTES
    while True:
        probes += 1
        ok, detail = worker.ask("try", works)
        if ok:
            break
        if works >= LARGEST_TRIED_BYTES:
            raise HostgenError(
                f"model {model.path} does not run in the TFLM runtime even with a {works}-byte arena "
                f"({detail}; runtime said: {worker.last_runtime_message()}); check that TFLM supports its ops and types"
            )
        works *= 2
    fails = 0
    while works - fails > 1:
        middle = (works + fails) // 2
        probes += 1
        ok, _ = worker.ask("try", middle)
        if ok:
            works = middle
        else:
            fails = middle
    probes += 1
    ok, reported = worker.ask("report", works)
    if not ok:
        raise HostgenError(f"TFLM runtime failed to rerun model {model.path} with its measured {works}-byte arena")
    return ArenaFigures(
        probed_bytes=works,
        reported_bytes=int(reported),
        reserved_bytes=reserved_from_probed(works),
        probes=probes,
    )
