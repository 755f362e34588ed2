"""Run the generated DSP in each implementation: the numpy reference, compiled C, and the
MicroPython unix port (the real VM, heap limited to the board's MicroPython heap).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from hostgen.dsp import features, fir
from hostgen.dsp.features import FEATURES, rules_for
from hostgen.paths import MPY_DIR
from hostgen.util.workdir import HarnessDirectory

IMPLEMENTATIONS = ("ref", "c", "micropython")
RUNNER = MPY_DIR / "dsp_runner.py"
RESULT_LENGTH = len(FEATURES) + 3  # features, decision, rule, score
MAX_BLOCK = 1024  # the MicroPython runner's buffer, in samples
C_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


class DspRunner(HarnessDirectory):
    """The generated DSP files of one build, written to a work directory and run on demand."""

    def __init__(self, files: dict[str, bytes], plan, heap_bytes: int, harness_source: bytes):
        self.plan = plan
        self.heap_bytes = heap_bytes
        self.rules = rules_for(plan.app["fallback"]["decide_on"])
        super().__init__("faultline-dsp-")
        for name, data in files.items():
            (self.workdir / name).write_bytes(data)
        (self.workdir / "dsp_harness.c").write_bytes(harness_source)
        self._binary: Path | None = None

    @property
    def fir_module(self) -> str:
        return f"fir_{self.plan.design.name}"

    def c_binary(self) -> Path:
        if self._binary is None:
            sources = [self.workdir / "dsp_harness.c", self.workdir / f"{self.fir_module}.c", self.workdir / "fallback.c"]
            self._binary = self.compile_c(sources, "dsp_harness", C_FLAGS)
        return self._binary

    def micropython(self, *args: str, timeout: float = 600) -> str:
        return self.run_micropython(RUNNER, self.heap_bytes, [self.fir_module, *args], timeout, "the DSP")

    def filter(self, implementation: str, samples: np.ndarray, blocks: list[int]) -> np.ndarray:
        """One channel filtered in the given block sizes (their sum must cover `samples`)."""
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        if max(blocks, default=0) > MAX_BLOCK:
            raise ValueError(f"blocks of at most {MAX_BLOCK} samples")
        if implementation == "ref":
            state = fir.FirReference(self.plan.design.coeffs)
            edges = np.cumsum([0, *blocks])
            return np.concatenate([state.process(samples[a:b]) for a, b in zip(edges[:-1], edges[1:])] or [samples[:0]])
        paths = {name: self.workdir / f"{name}.bin" for name in ("in", "blocks", "out")}
        samples.tofile(paths["in"])
        np.asarray(blocks, np.uint16).tofile(paths["blocks"])
        self._run_on_files(implementation, "fir", paths)
        return np.fromfile(paths["out"], np.int16)

    def fallback(self, implementation: str, windows: np.ndarray, raws: np.ndarray, thresholds: list[int]) -> np.ndarray:
        """(n, RESULT_LENGTH) int32: features, decision, rule, score per filtered window and its raw samples.

        The windows are taken as one channel's in order: each periodicity is over its history (features.py).
        """
        windows = np.ascontiguousarray(windows, dtype=np.int16)
        raws = np.ascontiguousarray(raws, dtype=np.int16)
        if implementation == "ref":
            values = features.with_period_history(features.features_of_windows(windows, raws))  # one channel's, in order
            rows = [[*v, *features.decide(v, self.rules, np.array(thresholds))] for v in values]
            return np.array(rows, np.int64).reshape(-1, RESULT_LENGTH).astype(np.int32)
        paths = {name: self.workdir / f"{name}.bin" for name in ("windows", "thresholds", "out")}
        np.stack([windows, raws], axis=1).tofile(paths["windows"])
        np.asarray(thresholds, np.int32).tofile(paths["thresholds"])
        self._run_on_files(implementation, "fallback", paths)
        return np.fromfile(paths["out"], np.int32).reshape(-1, RESULT_LENGTH)

    def filter_channels(self, implementation: str, recording: np.ndarray) -> np.ndarray:
        """Every channel of a (samples, channels) recording filtered in the app's blocks, as the firmware does."""
        block = self.plan.app["sampling"]["block_samples"]
        blocks = [min(block, len(recording) - start) for start in range(0, len(recording), block)]
        return np.stack([self.filter(implementation, recording[:, c], blocks) for c in range(recording.shape[1])], axis=1)

    def _run_on_files(self, implementation: str, mode: str, paths: dict[str, Path]) -> None:
        """The C harness or the MicroPython runner, in `mode`, on the files in `paths` (in order)."""
        arguments = [str(path) for path in paths.values()]
        if implementation == "c":
            subprocess.run([str(self.c_binary()), mode, *arguments], check=True)
        else:
            self.micropython(mode, *arguments)

    def bench_fir_ns(self, implementation: str, samples: int) -> float:
        """Nanoseconds per sample: 'c', 'viper' or 'plain'."""
        if implementation == "c":
            return float(subprocess.run([str(self.c_binary()), "bench-fir", str(samples)], capture_output=True,
                                        text=True, check=True).stdout)
        return float(self.micropython("bench-fir", str(samples), *(["plain"] if implementation == "plain" else [])))

    def bench_fallback_ns(self, implementation: str, windows: int) -> float:
        """Nanoseconds per window (features and decision): 'c' or 'viper'."""
        if implementation == "c":
            return float(subprocess.run([str(self.c_binary()), "bench-fallback", str(windows)], capture_output=True,
                                        text=True, check=True).stdout)
        return float(self.micropython("bench-fallback", str(windows)))


def open_runner(board, app_path: str | None, command: str) -> DspRunner:
    """The board's DSP, rendered exactly as `hostgen gen` renders it, ready to run."""
    from hostgen.codegen.dsp_files import render_dsp_files
    from hostgen.codegen.render import render_templates
    from hostgen.dsp.plan import plan_dsp

    plan = plan_dsp(board, app_path)
    files = render_dsp_files(plan, command)
    harness = render_templates({"dsp_harness.c": "codegen/dsp_harness.c.j2"}, plan.inputs, command, {"name": plan.design.name})
    return DspRunner(files, plan, board["micropython"]["heap_bytes"], harness["dsp_harness.c"])
