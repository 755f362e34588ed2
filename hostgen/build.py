"""`hostgen gen`: one board's whole build, rendered all or nothing into build/<board>/."""

from __future__ import annotations

from pathlib import Path

from hostgen import qcheck
from hostgen.boards import Board
from hostgen.budget import SizeReport, require_fit, size_report
from hostgen.codegen import check_identifier, manifest, render_model_files, write_build
from hostgen.dsp import plan_dsp, render_dsp_files
from hostgen.model_source import resolve_model
from hostgen.paths import BUILD_ROOT
from hostgen.report import render_report
from hostgen.tflite_model import ModelInfo


def default_out(board: Board) -> Path:
    return BUILD_ROOT / board.name


def generate(
    board: Board,
    model_arg: str | None,
    calibration_data: str | None,
    name: str | None,
    fraction: float | None,
    out: Path,
    app_path: str | None,
    log,
    float_model: str | None = None,
) -> tuple[SizeReport, dict[str, bytes]]:
    """Check everything first, then render every file and swap the build into place."""
    if name is not None:
        check_identifier(name)
    plan = plan_dsp(board, app_path)
    model, default_name = resolve_model(model_arg, calibration_data, log)
    name = name or default_name
    check_identifier(name, "model name" if model_arg is None else "model name (from the model file's name; set --name)")
    report = size_report(board, model, fraction)
    require_fit(report)
    tax, tax_note = _quantization_tax(model_arg, float_model, model, log)
    command = " ".join(
        ["hostgen gen", f"--board {board.name}", *([f"--model {model_arg}"] if model_arg else []),
         *([f"--float-model {float_model}"] if float_model else [])]
    )
    files = render_model_files(board, model, report, name, command) | render_dsp_files(plan, command)
    inputs = {"model": model.path, "board": board.path, **dict(plan.inputs)}
    if tax:
        inputs |= {"float_model": Path(float_model or qcheck.REFERENCE_FLOAT), "qcheck_data": qcheck.REFERENCE_DATA,
                   "qcheck_limits": qcheck.DEFAULT_LIMITS}
    figures = {"model_name": name, "model_arg": model_arg, "size": report.as_dict(), "filter": plan.design.summary(),
               "qcheck": qcheck.summary(tax) if tax else {"not_run": tax_note}}
    files["report.html"] = render_report(board, model, report, plan, tax, tax_note, inputs, files, command)
    files["build.json"] = manifest(files, command, inputs, figures)
    write_build(out, files)
    return report, files


def _quantization_tax(model_arg: str | None, float_model: str | None, model: ModelInfo, log) -> tuple[dict | None, str | None]:
    """The quantization check's figures when a float model is available (its gate must pass), else why it did not run."""
    if float_model is None and model_arg is not None:
        return None, "this build has no float model; give --float-model FILE.keras, the model the int8 model was converted from"
    float_path = Path(float_model) if float_model else qcheck.REFERENCE_FLOAT
    tax = qcheck.run_qcheck(float_path, model, None, None, qcheck.load_limits(None, {}), None, log)
    qcheck.require_gate(tax)
    log(f"quantization gate passed on {len(tax['conditions'])} conditions (figures in report.html; 'hostgen qcheck' prints them)")
    return tax, None
