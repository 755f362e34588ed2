"""Run a compiled model in each implementation on int8 tensors, batch first:
tflm (the truth), ref (numpy), c (gcc), micropython (the unix port, heap limited to the board's figure).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from hostgen.board.image import compile_mpy
from hostgen.model.engine import reference, tflm
from hostgen.model.engine.generate import CompiledModel, render_harness
from hostgen.model.tflite import ModelInfo
from hostgen.util.workdir import HarnessDirectory

IMPLEMENTATIONS = ("tflm", "ref", "c", "micropython")
UNIX_PORT_ARCH = "x64"
RUNNER = Path(__file__).resolve().parents[2] / "mpy" / "engine_runner.py"
C_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
UBSAN_32_FLAGS = ["-std=c99", "-m32", "-O1", "-fsanitize=undefined", "-fno-sanitize-recover", "-Wall", "-Wextra", "-Werror"]


class EngineRunner(HarnessDirectory):
    """One compiled model's files in a work directory, run on demand."""

    def __init__(self, model: ModelInfo, compiled: CompiledModel, heap_bytes: int, command: str = "hostgen infer"):
        self.model = model
        self.compiled = compiled
        self.heap_bytes = heap_bytes
        super().__init__("faultline-engine-")
        for name, data in compiled.files.items():
            if not name.endswith(".py"):
                (self.workdir / name).write_bytes(data)
        for name, data in compile_mpy({f"{self.module}.py": compiled.files[f"{self.module}.py"]}, UNIX_PORT_ARCH).items():
            (self.workdir / name).write_bytes(data)  # as flashed: a board never compiles the source
        (self.workdir / "engine_harness.c").write_bytes(render_harness(compiled, command))
        self._binaries: dict[tuple[str, ...], Path] = {}

    @property
    def module(self) -> str:
        return f"model_{self.compiled.name}"

    @property
    def sources(self) -> list[Path]:
        return [self.workdir / "engine_harness.c", self.workdir / f"{self.module}.c"]

    def c_binary(self, flags: list[str] = C_FLAGS) -> Path:
        key = tuple(flags)
        if key not in self._binaries:
            self._binaries[key] = self.compile_c(self.sources, f"harness{len(self._binaries)}", flags)
        return self._binaries[key]

    def micropython(self, *args: str, timeout: float = 1800) -> str:
        return self.run_micropython(RUNNER, self.heap_bytes, [self.module, *args], timeout, self.module)

    def run(self, implementation: str, x: np.ndarray, sliced: bool = False, c_flags: list[str] = C_FLAGS) -> np.ndarray:
        """int8 (batch, *input shape) -> int8 (batch, *output shape)."""
        x = np.ascontiguousarray(x, np.int8)
        shape = (len(x), *self.compiled.graph.output_tensor.shape)
        if implementation == "tflm":
            return tflm.run(self.model, x)
        if implementation == "ref":
            return reference.run(self.compiled.graph, x)
        in_path, out_path = self.workdir / "in.i8", self.workdir / "out.i8"
        x.tofile(in_path)
        extra = ["sliced"] if sliced else []
        if implementation == "c":
            subprocess.run([str(self.c_binary(c_flags)), "run", str(in_path), str(out_path), *extra], check=True)
        elif implementation == "micropython":
            self.micropython("run", str(in_path), str(out_path), *extra)
        else:
            raise ValueError(implementation)
        return np.fromfile(out_path, np.int8).reshape(shape)

    def classify(self, implementation: str, windows: np.ndarray,
                 c_flags: list[str] = C_FLAGS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """int16 windows (n, window * channels) -> (input tensors int8, scores int32, best int32) via prepare/scores."""
        windows = np.ascontiguousarray(windows, np.int16)
        size, outputs = self.compiled.plan.input_bytes, self.compiled.plan.output_bytes
        in_path, out_path = self.workdir / "windows.i16", self.workdir / "classified.bin"
        windows.tofile(in_path)
        if implementation == "c":
            subprocess.run([str(self.c_binary(c_flags)), "classify", str(in_path), str(out_path)], check=True)
        else:
            self.micropython("classify", str(in_path), str(out_path))
        record = np.dtype([("input", np.int8, size), ("scores", "<i4", outputs), ("best", "<i4")])
        rows = np.fromfile(out_path, record)
        return rows["input"], rows["scores"], rows["best"]

    def allocated_bytes(self, inferences: int) -> tuple[int, int, int]:
        """gc.mem_alloc() growth over `inferences` runs each of invoke, begin/step and classify."""
        return tuple(int(v) for v in self.micropython("allocation", str(inferences)).split())

    def module_heap_bytes(self) -> int:
        """Heap the imported .mpy module holds on the unix port (64-bit objects: an upper bound for a board)."""
        return int(self.micropython("heap"))

    def micropython_ms(self, inferences: int) -> float:
        return float(self.micropython("bench", str(inferences)))

    def micropython_prepare_ms(self, windows: int) -> float:
        return float(self.micropython("bench-prepare", str(windows)))

    def c_ms(self, inferences: int) -> float:
        result = subprocess.run([str(self.c_binary()), "bench", str(inferences)], capture_output=True, text=True, check=True)
        return float(result.stdout)
