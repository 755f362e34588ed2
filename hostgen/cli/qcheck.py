"""`hostgen qcheck`: what int8 quantization costs a model, clean and under sensor conditions, and the gate on it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hostgen.cli import arguments
from hostgen.errors import HostgenError

SUMMARY = "measure what int8 quantization costs, clean and under sensor conditions; gate it"


def add_arguments(parser) -> None:
    parser.add_argument("--model", help="the float Keras model (.keras) the int8 model was converted from (default: the reference)")
    parser.add_argument("--tflite", help="the int8 .tflite model to check (default: the reference)")
    parser.add_argument("--data", help=".npz with x (float32 windows in the model's input shape) and y (integer labels, 0 = normal); "
                        "default: the reference held-out set")
    parser.add_argument("--representative", "--calib", dest="representative",
                        help="representative windows (.npy, or .npz with x) for building the other quantization scheme "
                        "(default: --data x, else the reference training windows)")
    parser.add_argument("--windows", type=int, help="use only the first N windows of the data (default: all)")
    parser.add_argument("--limits", help="gate limits TOML with a [qcheck] table (default: hostgen/qcheck/limits.toml)")
    parser.add_argument("--max-recall-drop", type=float, help="largest fault-recall drop, float minus int8, for every condition")
    parser.add_argument("--max-false-alarm-increase", type=float, help="largest false-alarm rise, int8 minus float, for every condition")
    parser.add_argument("--min-agreement", type=float, help="smallest share of windows float and int8 decide alike, for every condition")
    arguments.as_json(parser, "print every figure as JSON")


def run(args) -> int:
    from hostgen.model.reference import reference_tflite
    from hostgen.model.tflite import load_model
    from hostgen.qcheck.tax import REFERENCE_FLOAT, format_qcheck, load_limits, require_gate, run_qcheck

    if (args.model is None) != (args.tflite is None):
        raise HostgenError("give both --model FLOAT.keras and --tflite INT8.tflite, or neither for the reference model")
    limits = load_limits(args.limits, {"max_recall_drop": args.max_recall_drop, "max_false_alarm_increase": args.max_false_alarm_increase,
                                       "min_agreement": args.min_agreement})
    int8 = load_model(args.tflite or reference_tflite(arguments.log))
    float_path = Path(args.model) if args.model else REFERENCE_FLOAT
    data, representative = (Path(p) if p else None for p in (args.data, args.representative))
    result = run_qcheck(float_path, int8, data, representative, limits, args.windows, arguments.log)
    print(json.dumps(result, indent=2) if args.json else format_qcheck(result))
    sys.stdout.flush()
    require_gate(result)
    return 0
