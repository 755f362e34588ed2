"""A user's .keras model is converted with representative windows made by the app's input recipe."""

from __future__ import annotations

import pytest

from hostgen.data import synthetic as dataset
from hostgen.model import quantize
from hostgen.model.engine.recipe import FLOAT_INPUTS, RECIPES
from hostgen.model.source import resolve_model

pytestmark = pytest.mark.slow  # converts with TensorFlow


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    keras = quantize.import_tensorflow().keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((dataset.WINDOW, 1)), keras.layers.Conv1D(4, 5), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(2, activation="softmax")])
    path = tmp_path_factory.mktemp("source") / "user.keras"
    model.save(path)
    return path


def test_the_input_scale_follows_the_recipe(keras_model):
    """Centred counts span a few hundredths of full scale; a window normalised by its own peak spans [-1, 1]."""
    scales = {}
    for recipe in ("centred_full_scale", "normalised_second_difference"):
        model, name = resolve_model(str(keras_model), None, recipe, lambda *_: None)
        scales[recipe] = model.inputs[0].scales[0]
        assert name == "user"
    assert scales["normalised_second_difference"] > 4 * scales["centred_full_scale"], scales


def test_every_recipe_has_float_inputs_to_convert_with():
    assert set(FLOAT_INPUTS) == set(RECIPES)
