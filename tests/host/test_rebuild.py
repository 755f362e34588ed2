"""One rebuild path: build.json records the whole request, and every rebuild replays it.

For each option a user can give `hostgen gen`, both rebuilds keep it: the one `hostgen flash`
makes when an input changed, and the one `hostgen calibrate` makes with new thresholds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, app_with

from hostgen.data import synthetic as dataset
from hostgen.model.reference import RECIPE, model_input
from hostgen.qcheck.tax import REFERENCE_FLOAT

BOARD = "esp32"


def hostgen_in(build_root, *args):
    return subprocess.run([sys.executable, "-m", "hostgen", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "HOSTGEN_BUILD_DIR": str(build_root)})


def flash_rebuild(build_root):
    """What `hostgen flash` does before it copies anything: bring the build up to date."""
    code = "from hostgen.codegen.build import current_build\nfrom hostgen.config.board import load_board\n" \
           f"current_build(load_board({BOARD!r}), print)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HOSTGEN_BUILD_DIR": str(build_root)})


@pytest.fixture(scope="module")
def normal_recording(tmp_path_factory):
    rng = np.random.default_rng(5)
    path = tmp_path_factory.mktemp("recording") / "normal.npy"
    np.save(path, dataset.synthesize(dataset.random_machine(rng, fault=False), 60_000, rng))
    return path


@pytest.fixture(scope="module")
def representative(tmp_path_factory):
    counts, _ = dataset.make_windows(RECIPE["train_seed"] + 100, 200)
    path = tmp_path_factory.mktemp("representative") / "windows.npy"
    np.save(path, model_input(counts))  # the reference model's own input recipe
    return path


def _effect(option: str, build, app):
    """What the option changed in the build, as one comparable value."""
    record = json.loads((build / "build.json").read_text())
    config = (build / "faultline_config.py").read_text()
    return {
        "name": record["model_name"],
        "fraction": record["size"]["budget_fraction"],
        "app": "NODE_ID = const(4242)" in config,
        "model": record["size"]["model_sha256"],
        "representative": record["inputs"].get("representative", {}).get("sha256"),
        "float_model": record["qcheck"].get("gate"),
    }[option]


CASES = {
    "name": lambda paths: ["--name", "spindle_3"],
    "fraction": lambda paths: ["--fraction", "0.55"],
    "app": lambda paths: [],  # every case has --app; this one checks that its edited content is what rebuilds use
    "model": lambda paths: ["--model", paths["reference"]],
    "representative": lambda paths: ["--model", REFERENCE_FLOAT, "--representative", paths["representative"]],
    "float_model": lambda paths: ["--model", REFERENCE_FLOAT, "--representative", paths["representative"],
                                  "--float-model", REFERENCE_FLOAT],
}
SLOW = {"representative", "float_model",  # convert a Keras model with TensorFlow
        "fraction", "model",  # left to `make test`: the fast tier keeps one option through both rebuilds
        "app"}  # every case edits the app and checks the rebuild used it: "name" proves that too


@pytest.mark.parametrize("rebuild", ["flash", "calibrate"])
@pytest.mark.parametrize("option", [pytest.param(o, marks=pytest.mark.slow) if o in SLOW else o for o in CASES])
def test_a_rebuild_keeps_every_option(option, rebuild, tmp_path, reference_tflite, representative, normal_recording):
    build_root = tmp_path / "build"
    app = app_with(tmp_path, node_id="17")
    paths = {"reference": reference_tflite, "representative": representative}
    result = hostgen_in(build_root, "gen", "--board", BOARD, "--app", app, *CASES[option](paths))
    assert result.returncode == 0, result.stderr
    build = build_root / BOARD
    request = json.loads((build / "build.json").read_text())["request"]
    before = _effect(option, build, app)

    app.write_text(app.read_text().replace("node_id = 17", "node_id = 4242"))  # an input changed: the build is stale
    if rebuild == "flash":
        result = flash_rebuild(build_root)
        assert result.returncode == 0 and "regenerating" in result.stdout, result.stdout + result.stderr
    else:
        result = hostgen_in(build_root, "calibrate", "--board", BOARD, "--normal", normal_recording)
        assert result.returncode == 0 and "regenerating" in result.stderr, result.stderr

    record = json.loads((build / "build.json").read_text())
    assert record["request"] == request, "the rebuild changed the request"
    assert "NODE_ID = const(4242)" in (build / "faultline_config.py").read_text(), "the rebuild did not use the edited app config"
    if option != "app":
        assert _effect(option, build, app) == before, f"the rebuild lost --{option.replace('_', '-')}"
    assert record["command"].startswith("hostgen gen --board esp32")


def test_commands_use_the_build_s_app_config(tmp_path, reference_tflite, normal_recording):
    """After `gen --app`, a command given no --app works on the build's config and says so once."""
    build_root = tmp_path / "build"
    app = app_with(tmp_path, node_id="99")
    assert hostgen_in(build_root, "gen", "--board", BOARD, "--app", app, "--model", reference_tflite).returncode == 0
    result = hostgen_in(build_root, "calibrate", "--board", BOARD, "--normal", normal_recording)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("app config:") == 1 and str(app) in result.stderr
    assert "NODE_ID = const(99)" in (build_root / BOARD / "faultline_config.py").read_text()


def test_an_old_build_without_a_request_is_a_clear_error(tmp_path, gen_build, reference_tflite):
    out = tmp_path / "old"
    shutil.copytree(gen_build(BOARD, "--model", reference_tflite), out)
    record = json.loads((out / "build.json").read_text())
    del record["request"]
    (out / "build.json").write_text(json.dumps(record))
    code = f"from hostgen.codegen.build import regenerate\nfrom pathlib import Path\nregenerate(Path({str(out)!r}), print)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "does not record its request; rerun 'hostgen gen'" in result.stderr


def test_a_build_made_by_other_hostgen_code_is_regenerated(tmp_path, reference_tflite):
    """Templates and firmware move together: a build rendered by older code (say, before an upgrade) is not reused."""
    build_root = tmp_path / "build"
    assert hostgen_in(build_root, "gen", "--board", BOARD, "--model", reference_tflite).returncode == 0
    record_path = build_root / BOARD / "build.json"
    record = json.loads(record_path.read_text())
    assert flash_rebuild(build_root).stdout == "", "an up-to-date build is reused as it is"
    record["generator"] = "0" * 64
    record_path.write_text(json.dumps(record))
    result = flash_rebuild(build_root)
    assert result.returncode == 0 and "inputs changed since the last build (hostgen's code): regenerating" in result.stdout
    assert json.loads(record_path.read_text())["generator"] != "0" * 64
