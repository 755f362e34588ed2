"""The faultline engine: four implementations (TFLM, numpy reference, C, MicroPython) agree on every
output byte, on the reference model and every zoo model; slices equal whole runs; the input recipe
and scores agree between host and board; the MicroPython module allocates nothing per inference;
bad models and bad tensors are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from engine_inputs import first_difference, open_engine, parity_sets, random_tensors
from helpers import run_hostgen, run_in_process

from hostgen.board.unix_port import unix_heap_bytes
from hostgen.config.board import load_board
from hostgen.model.engine.recipe import BAND_TAPS_Q12
from hostgen.model.engine.runners import C_FLAGS, UBSAN_32_FLAGS

HEAP = unix_heap_bytes(load_board("stm32f4"))
ZOO_ENGINE_MODELS = ("dense_per_channel", "dense_per_tensor", "conv2d_depthwise", "conv2d_same_pooled", "residual_logistic",
                     "autoencoder", "autoencoder_requantized", "mean_same_quantization", "wide_activations", "large_weights")
# 300 KB of weights fit no board's MicroPython heap (gen refuses them there); the parity run proves the arithmetic.
HEAP_FOR = {"large_weights": 2 * 1024 * 1024}
REFUSED = {
    "tanh_dense": "uses TANH, which the faultline engine cannot run on stock MicroPython",
    "two_inputs": "has 2 input(s) and 1 output(s)",
    "two_outputs": "has 1 input(s) and 2 output(s)",
    "int16_dense": "has an INT16 activation tensor",
    "overflowing_bias": "beyond 31 bits",
    "float_dense": "is not int8",
}


def _four_way(runner) -> None:
    failures = []
    for set_name, x in parity_sets(runner.compiled).items():
        truth = runner.run("tflm", x)
        for implementation in ("ref", "c", "micropython"):
            difference = first_difference(truth, runner.run(implementation, x))
            if difference:
                failures.append(f"{runner.compiled.name} {implementation} vs TFLM on {set_name}: {difference}")
    assert not failures, "\n".join(failures)


def _sliced_equals_whole(runner) -> None:
    x = random_tensors(runner.compiled.graph.input_tensor.size, 300, seed=9).reshape(300, *runner.compiled.graph.input_tensor.shape)
    whole = runner.run("c", x)
    for implementation in ("c", "micropython"):
        difference = first_difference(whole, runner.run(implementation, x, sliced=True))
        assert difference is None, f"{implementation} begin()/step() differs from invoke(): {difference}"


@pytest.fixture(scope="module")
def reference_engine(reference_tflite):
    from hostgen.model.reference import INPUT_RECIPE

    with open_engine(reference_tflite, HEAP, INPUT_RECIPE) as runner:
        yield runner


@pytest.fixture(scope="module")
def normalised_engine(reference_tflite):
    """The reference model behind the normalised_second_difference recipe: the recipe's board code under test."""
    with open_engine(reference_tflite, HEAP, "normalised_second_difference") as runner:
        yield runner


@pytest.fixture(scope="module")
def banded_engine(reference_tflite):
    """The reference model behind the band_over_level recipe: the recipe's board code under test."""
    with open_engine(reference_tflite, HEAP, "band_over_level") as runner:
        yield runner


@pytest.mark.slow
def test_reference_model_four_way_parity(reference_engine):
    _four_way(reference_engine)


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_ENGINE_MODELS)
def test_zoo_model_four_way_parity(zoo, name):
    with open_engine(zoo[name], HEAP_FOR.get(name, HEAP)) as runner:
        _four_way(runner)
        _sliced_equals_whole(runner)


@pytest.mark.slow
def test_zoo_covers_every_engine_op(zoo):
    from hostgen.model.engine.lowering import SUPPORTED_OPS
    from hostgen.model.tflite import load_model

    used = {op for name in ZOO_ENGINE_MODELS for op in load_model(zoo[name]).ops}
    assert set(SUPPORTED_OPS) - used <= {"SQUEEZE"}, set(SUPPORTED_OPS) - used  # Keras emits RESHAPE where SQUEEZE would do


@pytest.mark.slow
def test_sliced_run_equals_whole_run(reference_engine):
    _sliced_equals_whole(reference_engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["reference_engine", "normalised_engine", "banded_engine"])
def test_micropython_allocates_nothing_per_inference(request, engine):
    invoke, sliced, classify = request.getfixturevalue(engine).allocated_bytes(1000)
    assert (invoke, sliced, classify) == (0, 0, 0), f"gc.mem_alloc() grew by {invoke} (invoke), {sliced} (begin/step), {classify} (classify) over 1,000 each"


@pytest.mark.slow
@pytest.mark.parametrize("source", ["reference", "normalised", "banded", "autoencoder", "conv2d_same_pooled"])
def test_recipe_and_scores_agree_between_host_and_board(reference_engine, normalised_engine, banded_engine, zoo, source):
    """prepare() + invoke() + scores() on the board (C and viper) against the recipe's numpy definition."""
    from hostgen.data import synthetic as dataset
    from hostgen.model.engine import reference
    from hostgen.model.engine.generate import scores

    engines = {"reference": reference_engine, "normalised": normalised_engine, "banded": banded_engine}
    runner = engines[source] if source in engines else open_engine(zoo[source], HEAP)
    compiled = runner.compiled
    windows, _ = dataset.make_windows(11, 400 * compiled.recipe.channels, window=compiled.recipe.window)
    counts = windows.reshape(400, compiled.recipe.channels, -1).transpose(0, 2, 1).reshape(400, -1)
    counts[:8] = np.array([32767, -32768] * (counts.shape[1] // 2), np.int16)[: counts.shape[1]]  # full scale, largest mean swings
    counts[8] = -32768
    counts[9] = 0
    counts[9, counts.shape[1] // 2] = 1  # the smallest second difference: the largest reciprocal of the peak
    counts[10] = 5 * (np.arange(counts.shape[1]) % 3 == 0)  # peak 10 on every third sample
    counts[11] = 32767
    counts[11, 7:9] = -32768  # one full-scale notch among silence
    counts[12] = np.resize(np.where(np.array(BAND_TAPS_Q12[::-1]) > 0, 32767, -32768), counts.shape[1])  # the band filter's largest |b|
    prepared = compiled.recipe.prepare(counts)
    expected_scores, expected_best = scores(compiled, prepared, reference.run(compiled.graph, prepared.reshape(len(prepared), *compiled.graph.input_tensor.shape)))
    width = expected_scores.shape[1]
    for implementation, flags in (("c", C_FLAGS), ("c", UBSAN_32_FLAGS), ("micropython", None)):
        inputs, got_scores, got_best = runner.classify(implementation, counts, c_flags=flags or C_FLAGS)
        assert first_difference(prepared, inputs) is None, f"{implementation} prepare(): {first_difference(prepared, inputs)}"
        assert np.array_equal(expected_scores, got_scores[:, :width]), f"{implementation} scores differ"
        assert np.array_equal(expected_best, got_best), f"{implementation} best class differs"
    if source not in engines:
        runner.close()


def test_reference_recipe_matches_the_training_input(reference_tflite):
    """The integer recipe the board runs is the float input the reference model was trained on, to within one step."""
    from hostgen.data import synthetic as dataset
    from hostgen.model.engine.lowering import lower
    from hostgen.model.engine.recipe import make_recipe
    from hostgen.model.reference import INPUT_RECIPE, model_input
    from hostgen.model.tflite import load_model
    from hostgen.model.tflm_run import quantize_input

    graph = lower(load_model(reference_tflite), "faultline")
    recipe = make_recipe(INPUT_RECIPE, graph.input_tensor)
    windows, _ = dataset.make_windows(5, 200)
    tensor = graph.input_tensor
    expected = np.stack([quantize_input(x, tensor.scale, tensor.zero_point) for x in model_input(windows)]).reshape(200, -1)
    got = recipe.prepare(windows)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert np.mean(got == expected) > 0.97  # the integer mean drops the fraction of a count: rare one-step flips


def test_normalised_recipe_matches_its_float_input():
    from hostgen.data import synthetic as dataset
    from hostgen.model.engine.lowering import Tensor
    from hostgen.model.engine.recipe import make_recipe, normalised_input
    from hostgen.model.tflm_run import quantize_input

    windows, _ = dataset.make_windows(5, 200, speeds=(0.6, 1.4), loads=(0.5, 1.2))
    scale, zero_point = 2 / 255, -1  # what the converter makes of inputs in [-1, 1]
    recipe = make_recipe("normalised_second_difference", Tensor(0, (1, 256, 1), scale, zero_point))
    expected = np.stack([quantize_input(x, scale, zero_point) for x in normalised_input(windows)]).reshape(200, -1)
    got = recipe.prepare(windows)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert np.mean(got == expected) > 0.99  # float rounding against the integer requantize: rare one-step flips


def test_normalised_second_difference_stays_inside_31_bits():
    """Every product the board forms is at most 2^28 and every value at most 2^14, on full-scale, silent and tiny windows."""
    from hostgen.model.engine.recipe import NORMALISED_UNIT, RECIPROCAL_NUMERATOR, normalised_second_difference

    rng = np.random.default_rng(3)
    windows = np.concatenate([
        np.array([[32767, -32768] * 128, [-32768] * 256, [0] * 255 + [1]]),
        rng.integers(-32768, 32768, (200, 256)),
        rng.integers(-2, 3, (200, 256)),
    ]).astype(np.int64)[..., np.newaxis]
    d = np.zeros_like(windows)
    d[:, 2:] = windows[:, 2:] - 2 * windows[:, 1:-1] + windows[:, :-2]
    peak = np.maximum(np.abs(d).max(axis=1, keepdims=True), 1)
    assert np.abs(d).max() == 2 * 32767 + 2 * 32768 and (np.abs(d) * (RECIPROCAL_NUMERATOR // peak)).max() <= 1 << 28
    n = normalised_second_difference(windows)
    assert np.abs(n).max() == NORMALISED_UNIT and np.all(n[:, :2] == 0) and not np.any(n[1])


def test_band_over_level_stays_inside_31_bits():
    """The filter's sum is under 2^28, |b| at most BAND_PEAK, the level's product under 2^31 and every value at most 2^14."""
    from hostgen.errors import HostgenError
    from hostgen.model.engine.lowering import Tensor
    from hostgen.model.engine.recipe import BAND_LEVEL_SPAN, BAND_PEAK, MAX_BAND_WINDOW, NORMALISED_UNIT, band_over_level, band_passed, make_recipe

    rng = np.random.default_rng(3)
    worst = np.where(np.array(BAND_TAPS_Q12[::-1]) > 0, 32767, -32768)
    windows = np.concatenate([
        np.array([np.resize(worst, 256), np.resize(-worst - 1, 256), [-32768] * 256, [0] * 255 + [1]]),
        rng.integers(-32768, 32768, (200, 256)),
        rng.integers(-2, 3, (200, 256)),
    ]).astype(np.int64)[..., np.newaxis]
    b = band_passed(windows)
    assert np.abs(b).max() == BAND_PEAK < 1 << 16 and sum(abs(h) for h in BAND_TAPS_Q12) << 15 < 1 << 28
    assert BAND_LEVEL_SPAN * BAND_PEAK * MAX_BAND_WINDOW < 1 << 31
    n = band_over_level(windows)
    assert np.abs(n).max() == NORMALISED_UNIT and np.all(n[:, : len(BAND_TAPS_Q12) - 1] == 0) and not np.any(n[2])
    for refused in (len(BAND_TAPS_Q12) - 1, MAX_BAND_WINDOW + 1):
        with pytest.raises(HostgenError, match=f"{len(BAND_TAPS_Q12)} to {MAX_BAND_WINDOW} samples .* not {refused};"):
            make_recipe("band_over_level", Tensor(0, (1, refused, 1), 2 / 255, -1))


def test_app_config_knows_every_engine_recipe():
    from hostgen.config.app import INPUT_RECIPES
    from hostgen.model.engine.recipe import RECIPES

    assert INPUT_RECIPES == RECIPES


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_engine_refuses_what_it_cannot_run_exactly(zoo, name, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 4), np.int8))
    result = run_hostgen("infer", "--board", "stm32f4", "--model", str(zoo[name]), "--in", str(x), "--out", str(tmp_path / "y.npy"))
    assert result.returncode == 2
    assert result.stderr.startswith("hostgen: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert REFUSED[name] in result.stderr


@pytest.mark.parametrize("array, problem", [
    (np.zeros((2, 1, 256, 1), np.float32), "holds float32 values"),
    (np.zeros((2, 256), np.int8), "has shape (2, 256)"),
    (np.zeros((1, 256, 1), np.int8), "has shape (1, 256, 1)"),
])
def test_infer_rejects_bad_tensors(reference_tflite, tmp_path, array, problem):
    np.save(tmp_path / "x.npy", array)
    result = run_in_process("infer", "--board", "stm32f4", "--model", str(reference_tflite), "--in", str(tmp_path / "x.npy"),
                            "--out", str(tmp_path / "y.npy"), "--impl", "ref")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and problem in result.stderr and "(batch, 1, 256, 1)" in result.stderr
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("implementation", ["tflm", "ref", "c", "micropython"])
def test_infer_writes_the_output_tensors(reference_tflite, tmp_path, implementation):
    x = random_tensors(256, 40, seed=3).reshape(40, 1, 256, 1)
    np.save(tmp_path / "x.npy", x)
    result = run_hostgen("infer", "--board", "stm32f4", "--model", str(reference_tflite), "--in", str(tmp_path / "x.npy"),
                         "--out", str(tmp_path / "y.npy"), "--impl", implementation)
    assert result.returncode == 0, result.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int8 and y.shape == (40, 1, 2)
    from hostgen.model.engine import tflm
    from hostgen.model.tflite import load_model

    assert first_difference(tflm.run(load_model(reference_tflite), x), y) is None


@pytest.mark.parametrize("march", ["armv7emsp", "xtensawin", "x64"])
def test_module_compiles_for_the_boards_without_big_int_constants(reference_engine, march):
    """mpy-cross turns an integer literal of 2**30 or more into a big-int object, which a viper loop
    cannot take as a machine word and which would allocate on a 32-bit board."""
    import re

    from hostgen.board.image import compile_mpy

    module = f"model_{reference_engine.compiled.name}"
    source = reference_engine.compiled.files[f"{module}.py"].decode()
    code = "\n".join(line.split("#")[0] for line in source.splitlines() if not line.lstrip().startswith("b'"))
    literals = [int(v, 0) for v in re.findall(r"(?<![\w.'\\])(0x[0-9A-Fa-f]+|\d+)(?![\w.])", code)]
    assert max(literals) < 1 << 30
    assert compile_mpy({f"{module}.py": source.encode()}, march)[f"{module}.mpy"]
