"""Engine speed for `hostgen bench`: MicroPython (unix port) and C milliseconds per inference measured
in the same run, their ratio, the input recipe's MicroPython milliseconds per window against an
inference's, and the emulated Cortex-M4 instruction count."""

from __future__ import annotations

from pathlib import Path

from hostgen.board.image import compile_mpy
from hostgen.model.engine import cortex_m4
from hostgen.model.engine.generate import compile_model
from hostgen.model.engine.infer import engine_name
from hostgen.model.engine.runners import EngineRunner
from hostgen.model.tflite import load_model

STM32F4_ARCH = "armv7emsp"
CORTEX_M4_HZ = 168_000_000  # STM32F405 (pyboard) at full speed
C_INFERENCES = 2000


def engine_bench(model_path: Path, heap_bytes: int, micropython_inferences: int = 200, recipe: str = "centred_full_scale") -> dict:
    """Figures per inference; the Cortex-M4 time assumes one instruction per cycle (a lower bound:
    loads and taken branches cost 2 cycles on a Cortex-M4, so expect up to about 1.5x)."""
    model = load_model(model_path)
    compiled = compile_model(model, engine_name(model_path), "hostgen bench", recipe)
    with EngineRunner(model, compiled, heap_bytes, "hostgen bench") as runner:
        micropython_ms = runner.micropython_ms(micropython_inferences)
        prepare_ms = runner.micropython_prepare_ms(micropython_inferences)
        module_heap = runner.module_heap_bytes()
        c_ms = runner.c_ms(C_INFERENCES)
        instructions = None if cortex_m4.tools_missing() else cortex_m4.instructions_per_inference(runner)
    module = f"model_{compiled.name}"
    mpy = compile_mpy({f"{module}.py": compiled.files[f"{module}.py"]}, STM32F4_ARCH)[f"{module}.mpy"]
    return {
        "model": model_path.name,
        "macs": compiled.graph.macs,
        "activation_bytes": compiled.plan.activation_bytes,
        "weight_bytes": compiled.weight_bytes,
        "mpy_bytes": len(mpy),
        "module_heap_bytes_64bit": module_heap,
        "micropython_ms": round(micropython_ms, 4),
        "c_ms": round(c_ms, 5),
        "micropython_to_c": round(micropython_ms / c_ms, 1),
        "recipe": compiled.recipe.name,
        "micropython_prepare_ms": round(prepare_ms, 4),
        "prepare_to_inference": round(prepare_ms / micropython_ms, 3),
        "cortex_m4_instructions": None if instructions is None else round(instructions),
        "cortex_m4_ms_at_168mhz": None if instructions is None else round(1000 * instructions / CORTEX_M4_HZ, 2),
    }


if __name__ == "__main__":  # python -m hostgen.model.engine.bench RECIPE MODEL.tflite ...: one row per model
    import sys

    from hostgen.board.unix_port import unix_heap_bytes
    from hostgen.config.board import load_board

    heap = unix_heap_bytes(load_board("stm32f4"))
    columns = ("model", "macs", "activation_bytes", "weight_bytes", "mpy_bytes", "module_heap_bytes_64bit", "micropython_ms", "c_ms", "micropython_to_c",
               "recipe", "micropython_prepare_ms", "prepare_to_inference", "cortex_m4_instructions", "cortex_m4_ms_at_168mhz")
    print(" | ".join(columns))
    for path in sys.argv[2:]:
        row = engine_bench(Path(path), max(heap, 4 * Path(path).stat().st_size), recipe=sys.argv[1])
        print(" | ".join(str(row[c]) for c in columns))
