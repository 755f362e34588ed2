"""`hostgen gen`: one board's whole build, rendered all or nothing into build/<board>/."""

from __future__ import annotations

from pathlib import Path

from hostgen.boards import Board
from hostgen.budget import SizeReport, require_fit, size_report
from hostgen.codegen import check_identifier, manifest, render_model_files, write_build
from hostgen.dsp import plan_dsp, render_dsp_files
from hostgen.model_source import resolve_model
from hostgen.paths import BUILD_ROOT


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
) -> tuple[SizeReport, dict[str, bytes]]:
    """Check everything first, then render every file and swap the build into place."""
    if name is not None:
        check_identifier(name)
    plan = plan_dsp(board.name, app_path)
    model, default_name = resolve_model(model_arg, calibration_data, log)
    name = name or default_name
    check_identifier(name, "model name" if model_arg is None else "model name (from the model file's name; set --name)")
    report = size_report(board, model, fraction)
    require_fit(report)
    command = " ".join(["hostgen gen", f"--board {board.name}", *([f"--model {model_arg}"] if model_arg else [])])
    files = render_model_files(board, model, report, name, command) | render_dsp_files(plan, command)
    inputs = {"model": model.path, "board": board.path, **dict(plan.inputs)}
    figures = {"model_name": name, "model_arg": model_arg, "size": report.as_dict(), "filter": plan.design.summary()}
    files["build.json"] = manifest(files, command, inputs, figures)
    write_build(out, files)
    return report, files
