"""What hostgen refuses before generating anything: bad files, float models, missing ops."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest
from helpers import assert_user_error, run_in_process

from hostgen.errors import HostgenError
from hostgen.model.tflite import load_model
from hostgen.model.tflm_ops import RESOLVER_METHODS


def test_reference_model_is_int8_with_tflm_ops(reference_tflite):
    model = load_model(reference_tflite)
    assert model.inputs[0].dtype == "INT8" and model.outputs[0].dtype == "INT8"
    assert model.inputs[0].shape == (1, 256, 1)
    assert "CONV_2D" in model.ops and "FULLY_CONNECTED" in model.ops
    assert all(op in RESOLVER_METHODS for op in model.ops)


@pytest.mark.parametrize("keep", [0, 7, 64, 1000, 5000, -40])
def test_truncated_model_is_refused(tmp_path, reference_tflite, keep):
    data = reference_tflite.read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    assert_user_error(run_in_process("size", "--board", "stm32f4", "--model", bad), str(bad))


def test_corrupted_models_never_crash_the_loader(tmp_path, reference_tflite):
    """Random byte damage: load_model either accepts the file or raises HostgenError."""
    data = bytearray(reference_tflite.read_bytes())
    rng = random.Random(1)
    for trial in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path = tmp_path / f"damaged{trial}.tflite"
        path.write_bytes(bytes(damaged))
        try:
            load_model(path)
        except HostgenError:
            pass


def test_not_a_flatbuffer(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("this is not a model at all\n")
    assert_user_error(run_in_process("size", "--board", "stm32f4", "--model", path), "not a .tflite flatbuffer")


def test_float_model_is_refused(zoo):
    assert_user_error(run_in_process("gen", "--board", "stm32f4", "--model", zoo["float_dense"]), "is not int8", "FLOAT32")


def test_unsupported_op_is_named(zoo):
    assert_user_error(run_in_process("gen", "--board", "stm32f4", "--model", zoo["unsupported_topk"]), "TOPK_V2")


def test_runtime_agrees_the_unsupported_op_is_missing(zoo):
    """The real TFLM runtime also fails on the model hostgen refuses."""
    script = (
        "import sys; from tflite_micro import runtime\n"
        "runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=1 << 20)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(zoo["unsupported_topk"])], capture_output=True, text=True)
    assert result.returncode != 0


def test_op_table_matches_the_installed_runtime():
    """Every builtin the TFLM runtime registers has a resolver method here, and nothing more."""
    from tflite_micro.python.tflite_micro import _runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    symbols = subprocess.run(["nm", "-C", _runtime.__file__], capture_output=True, text=True, check=True).stdout
    registered = set(re.findall(r"Register_([A-Z0-9_]+)\(\)", symbols))
    builtins = {name for name in vars(schema.BuiltinOperator) if not name.startswith("_")}
    assert registered & builtins == set(RESOLVER_METHODS)


def test_missing_model_file():
    assert_user_error(run_in_process("size", "--board", "stm32f4", "--model", "no/such/model.tflite"), "not found")


def test_wrong_suffix(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0" * 16)
    assert_user_error(run_in_process("size", "--board", "stm32f4", "--model", path), "'.onnx'")
