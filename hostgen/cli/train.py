"""`hostgen train`: the reference model, trained and quantized once, cached until its inputs change."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "train and quantize the reference model (cached in build/reference/)"


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from hostgen.model.reference import reference_tflite

    print(reference_tflite(arguments.log))
    return 0
