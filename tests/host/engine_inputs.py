"""Input tensors for engine parity: random int8, extreme patterns, and real windows through the recipe."""

from __future__ import annotations

import numpy as np

from hostgen.data import synthetic as dataset


def random_tensors(size: int, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(count, size), dtype=np.int8)


def extreme_tensors(size: int, count: int, seed: int) -> np.ndarray:
    """-128/127 in fixed patterns (constant, alternating, blocks, one spike) and at random."""
    rng = np.random.default_rng(seed)
    index = np.arange(size)
    patterns = [np.full(size, -128), np.full(size, 127), np.where(index % 2, 127, -128), np.where(index % 2, -128, 127)]
    for period in (3, 4, 7, 16):
        patterns.append(np.where((index // period) % 2, 127, -128))
    for position in rng.choice(size, size=min(size, 8), replace=False):
        patterns.append(np.where(index == position, 127, -128))
        patterns.append(np.where(index == position, -128, 127))
    fixed = np.array(patterns, np.int8)
    drawn = np.where(rng.random((count - len(fixed), size)) < rng.random((count - len(fixed), 1)), 127, -128).astype(np.int8)
    return np.concatenate([fixed, drawn])


def real_tensors(recipe, count: int, seed: int) -> np.ndarray:
    """Synthetic machine windows (normal and faulty), `recipe.channels` of them interleaved per input, prepared."""
    windows, _ = dataset.make_windows(seed, count * recipe.channels, window=recipe.window)
    counts = windows.reshape(count, recipe.channels, recipe.window).transpose(0, 2, 1).reshape(count, -1)
    return recipe.prepare(counts)


def parity_sets(compiled, seed: int = 0, random: int = 6000, extremes: int = 2000, real: int = 2000) -> dict[str, np.ndarray]:
    """Named sets of int8 tensors in the model's input shape: 10,000 by default."""
    shape = compiled.graph.input_tensor.shape
    size = compiled.graph.input_tensor.size
    sets = {
        "random": random_tensors(size, random, seed),
        "extremes": extreme_tensors(size, extremes, seed + 1),
        "real windows": real_tensors(compiled.recipe, real, seed + 2),
    }
    return {name: x.reshape(len(x), *shape) for name, x in sets.items()}


def first_difference(expected: np.ndarray, got: np.ndarray) -> str | None:
    """Where two output batches first differ, for a failure message; None if every byte agrees."""
    if expected.shape != got.shape:
        return f"shape {got.shape} instead of {expected.shape}"
    differing = np.argwhere(expected.reshape(len(expected), -1) != got.reshape(len(got), -1))
    if len(differing) == 0:
        return None
    item, byte = differing[0]
    return (f"{len(np.unique(differing[:, 0]))} of {len(expected)} inputs differ; first: input {item}, output byte {byte}: "
            f"expected {int(expected.reshape(len(expected), -1)[item, byte])}, got {int(got.reshape(len(got), -1)[item, byte])}")


def open_engine(model_path, heap_bytes: int, recipe: str = "centred_full_scale"):
    """The model compiled as `hostgen infer` compiles it (or with another input recipe), in a runner (close it when done)."""
    from hostgen.model.engine.generate import compile_model
    from hostgen.model.engine.infer import engine_name
    from hostgen.model.engine.runners import EngineRunner
    from hostgen.model.tflite import load_model

    model = load_model(model_path)
    compiled = compile_model(model, engine_name(model_path), "pytest", recipe)
    return EngineRunner(model, compiled, heap_bytes, "pytest")
