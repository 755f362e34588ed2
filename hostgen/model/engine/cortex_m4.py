"""The generated C on an emulated Cortex-M4 (qemu netduinoplus2, an STM32F405, the pyboard's MCU):
byte-identical outputs and a deterministic instruction count per inference.

qemu runs with -icount shift=0, so its virtual clock advances one step per instruction; the harness
reads SysTick (wraps counted in its interrupt) around each inference and calibrates ticks per
instruction on a loop of exactly two instructions per pass.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hostgen.errors import HostgenError

SUPPORT_DIR = Path(__file__).resolve().parent / "cortex_m4"
CROSS_FLAGS = ["-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-Wall", "-Wextra", "-Werror",
               "-DCORTEX_M4", "--specs=rdimon.specs", "-nostartfiles"]
QEMU = ["qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0"]
QEMU_TIMEOUT_S = 900


@dataclass(frozen=True)
class CortexM4Run:
    outputs: np.ndarray
    instructions_per_inference: float


def tools_missing() -> str | None:
    """Why the emulated run cannot happen here (and how to fix it), or None."""
    for tool, package in (("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; apt-get install {package}"
    return None


def build(workdir: Path, sources: list[Path]) -> Path:
    elf = workdir / "engine_m4.elf"
    command = ["arm-none-eabi-gcc", *CROSS_FLAGS, "-I", str(workdir), "-T", str(SUPPORT_DIR / "stm32f405.ld"),
               str(SUPPORT_DIR / "startup.c"), *map(str, sources), "-o", str(elf)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines() or ["?"]
        raise HostgenError(f"the generated C does not build for the Cortex-M4: {errors[0].strip()}")
    return elf


def run(workdir: Path, sources: list[Path], x: np.ndarray, output_shape: tuple[int, ...]) -> CortexM4Run:
    """int8 inputs (batch, *input shape) through the emulated board, read and written by semihosting."""
    missing = tools_missing()
    if missing:
        raise HostgenError(missing)
    elf = build(workdir, sources)
    np.ascontiguousarray(x, np.int8).tofile(workdir / "engine_in.bin")
    result = subprocess.run([*QEMU, "-kernel", str(elf)], cwd=workdir, capture_output=True, text=True, timeout=QEMU_TIMEOUT_S)
    calibration = re.search(r"calibration (\d+) instructions (\d+) ticks", result.stdout)
    inferences = re.search(r"inferences (\d+) ticks (\d+)", result.stdout)
    if result.returncode != 0 or not calibration or not inferences:
        raise HostgenError(f"the emulated Cortex-M4 run failed (exit {result.returncode}): {(result.stdout + result.stderr).strip()[-200:]}")
    count = int(inferences.group(1))
    ticks_per_instruction = int(calibration.group(2)) / int(calibration.group(1))
    outputs = np.fromfile(workdir / "engine_out.bin", np.int8).reshape(count, *output_shape)
    return CortexM4Run(outputs, int(inferences.group(2)) / ticks_per_instruction / max(count, 1))


def instructions_per_inference(runner, inputs: int = 8, seed: int = 0) -> float:
    """For `hostgen bench`: the compiled model's Cortex-M4 instructions per inference, on random inputs."""
    shape = runner.compiled.graph.input_tensor.shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(inputs, *shape), dtype=np.int8)
    return run(runner.workdir, runner.sources, x, runner.compiled.graph.output_tensor.shape).instructions_per_inference
