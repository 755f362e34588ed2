"""The one way a board's build is made and remade.

A `BuildRequest` is everything a user asked for (board, model, representative data, float
model, name, budget fraction, app config, output). `generate` checks it all first, then
renders every file and swaps the build into place whole; build.json records the request, so
`regenerate` replays it exactly: a rebuild keeps every input the user gave.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from hostgen import __version__
from hostgen.codegen.dsp_files import render_dsp_files
from hostgen.codegen.model_files import render_model_files
from hostgen.codegen.render import check_identifier, display_path, file_sha256
from hostgen.codegen.report import render_report
from hostgen.codegen.tier2_files import compile_tier2
from hostgen.config.board import Board, load_board
from hostgen.dsp.plan import plan_dsp
from hostgen.errors import HostgenError
from hostgen.model.budget import SizeReport, require_fit, size_report
from hostgen.model.source import resolve_model
from hostgen.model.tflite import ModelInfo
from hostgen.paths import BUILD_ROOT
from hostgen.qcheck import tax as qcheck
from hostgen.util.atomic import staged_directory
from hostgen.util.cache import code_key

RECORD = "build.json"
FILE_OPTIONS = ("model", "representative", "float_model", "app")


@dataclass(frozen=True)
class BuildRequest:
    board: str  # a board name, or the path of a board file
    model: str | None = None  # int8 .tflite or .keras; None: the reference model
    representative: str | None = None  # windows for converting a .keras model to int8
    float_model: str | None = None  # the .keras the int8 model came from: runs the quantization check
    name: str | None = None  # the model's C name
    fraction: float | None = None  # share of SRAM the arena may use; None: the board file's
    app: str | None = None  # application config; None: the built-in default
    out: str | None = None  # None: build/<board>

    def resolved(self) -> BuildRequest:
        """The same request with absolute file paths, so that replaying it works from any directory."""
        absolute = {key: str(Path(value).resolve()) for key in FILE_OPTIONS if (value := getattr(self, key))}
        board = str(Path(self.board).resolve()) if "/" in self.board or self.board.endswith(".toml") else self.board
        out = str(Path(self.out).resolve()) if self.out else None
        return replace(self, **absolute, board=board, out=out)

    def command(self) -> str:
        """The `hostgen gen` command line that makes this build."""
        options = [f"--{field.name.replace('_', '-')} {getattr(self, field.name)}" for field in fields(self)
                   if getattr(self, field.name) is not None and field.name != "out"]
        return " ".join(["hostgen gen", *options])

    @classmethod
    def from_record(cls, record: dict) -> BuildRequest:
        return cls(**record)


def default_out(board: Board) -> Path:
    return BUILD_ROOT / board.name


def output_dir(request: BuildRequest, board: Board) -> Path:
    return Path(request.out) if request.out else default_out(board)


def generate(request: BuildRequest, log) -> tuple[SizeReport, dict[str, bytes], Path]:
    """Check everything first, then render every file and swap the build into place."""
    request = request.resolved()
    board = load_board(request.board)
    if request.name is not None:
        check_identifier(request.name)
    plan = plan_dsp(board, request.app)
    model, default_name = resolve_model(request.model, request.representative, plan.app["model"]["input_recipe"], log)
    name = request.name or default_name
    check_identifier(name, "model name" if request.model is None else "model name (from the model file's name; set --name)")
    report = size_report(board, model, request.fraction)
    require_fit(report)
    command = request.command()
    tier2 = compile_tier2(model, name, board, plan.app, command)
    tax, tax_note = _quantization_tax(request, model, log)
    if tier2.module is None:
        log(f"tier 2 stays off: {tier2.reason}")
    elif not tier2.decides:
        log(f"tier 2 advises only, the fallback decides: {tier2.reason}")
    files = (render_model_files(board, model, report, name, command) | render_dsp_files(plan, command, tier2)
             | tier2.files)
    inputs = {"model": model.path, "board": board.path, **dict(plan.inputs)}
    if request.representative:
        inputs["representative"] = Path(request.representative)
    if tax:
        inputs |= {"float_model": Path(request.float_model or qcheck.REFERENCE_FLOAT), "qcheck_data": qcheck.REFERENCE_DATA,
                   "qcheck_limits": qcheck.DEFAULT_LIMITS}
    figures = {"model_name": name, "size": report.as_dict(), "tier2": tier2.figures, "filter": plan.design.summary(),
               "qcheck": qcheck.summary(tax) if tax else {"not_run": tax_note}}
    files["report.html"] = render_report(board, model, report, plan, tax, tax_note, inputs, files, command)
    files[RECORD] = _record(request, files, command, inputs, figures)
    out = output_dir(request, board)
    with staged_directory(out) as staging:
        for file, data in files.items():
            (staging / file).write_bytes(data)
    return report, files, out


def regenerate(out: Path, log, **changes) -> tuple[SizeReport, dict[str, bytes], Path]:
    """Rebuild `out` from the request its build.json records, exactly as it was asked for (but for `changes`)."""
    return generate(replace(recorded_request(out), **changes), log)


def app_config_for(board: Board, app_arg: str | None, log) -> str | None:
    """The app config a command uses: the one given, else the one board's build was made with, else the default."""
    if app_arg is not None:
        return app_arg
    out = default_out(board)
    app = recorded_request(out).app if (out / RECORD).is_file() and "request" in _read_record(out) else None
    log(f"app config: {app} (the {board.name} build's)" if app else "app config: the built-in default (hostgen/config/app.toml)")
    return app


def recorded_request(out: Path) -> BuildRequest:
    record = _read_record(out)
    if "request" not in record:
        raise HostgenError(f"{out / RECORD} was made by an older hostgen and does not record its request; rerun 'hostgen gen'")
    return BuildRequest.from_record(record["request"])


def stale_inputs(out: Path) -> list[str]:
    """The inputs of the build in `out` that changed (or vanished) since it was made, hostgen's own code among them."""
    record = _read_record(out)
    stale = [role for role, entry in record["inputs"].items()
             if not Path(entry["file"]).is_file() or file_sha256(Path(entry["file"])) != entry["sha256"]]
    return stale + (["hostgen's code"] if record.get("generator") != generator_key() else [])


def generator_key() -> str:
    """A hash of hostgen's code and templates: files rendered by other code may not match the firmware beside them."""
    package = Path(__file__).resolve().parents[1]
    sources = sorted(path for path in package.rglob("*")
                     if path.suffix in (".py", ".j2", ".toml", ".proto") and "__pycache__" not in path.parts)
    return code_key(*(part for path in sources for part in (str(path.relative_to(package)), path)))


def current_build(board: Board, log) -> Path:
    """build/<board>/, generated first if missing, regenerated from its request if any input changed."""
    out = default_out(board)
    if not (out / RECORD).is_file():
        log(f"no build for {board.name} yet: generating")
        return generate(BuildRequest(board=board.name), log)[2]
    stale = stale_inputs(out)
    if stale:
        log(f"inputs changed since the last build ({', '.join(stale)}): regenerating")
        return regenerate(out, log)[2]
    return out


def build_with_app(board: Board, app_arg: str | None, log) -> Path:
    """The board's build, up to date, made with `app_arg` when one is given (regenerated if it had another)."""
    out = current_build(board, log)
    if app_arg is not None and recorded_request(out).app != str(Path(app_arg).resolve()):
        log(f"regenerating {out} with app config {app_arg}")
        regenerate(out, log, app=str(Path(app_arg).resolve()))
    return out


def require_build(out: Path, board: Board) -> dict:
    """The build record of `out`, which must hold a build for `board`."""
    if not (out / RECORD).is_file():
        raise HostgenError(f"no generated build in {out}; run 'hostgen gen --board {board.name}' first")
    record = _read_record(out)
    if record["size"]["board"] != board.name:
        raise HostgenError(f"{out} was generated for another board; run 'hostgen gen --board {board.name}'")
    return record


def _read_record(out: Path) -> dict:
    try:
        return json.loads((out / RECORD).read_text())
    except (OSError, ValueError) as exc:
        raise HostgenError(f"cannot read {out / RECORD} ({exc}); rerun 'hostgen gen'") from None


def _record(request: BuildRequest, files: dict[str, bytes], command: str, inputs: dict[str, Path], figures: dict) -> bytes:
    """build.json: the request that made this build, its figures, and the hash of every input and file."""
    record = {
        "generated_by": f"hostgen {__version__}",
        "generator": generator_key(),
        "command": command,
        "request": asdict(request),
        **figures,
        "inputs": {role: {"path": display_path(path), "file": str(path.resolve()), "sha256": file_sha256(path)}
                   for role, path in inputs.items()},
        "files": {file: hashlib.sha256(data).hexdigest() for file, data in sorted(files.items())},
    }
    return (json.dumps(record, indent=2) + "\n").encode()


def _quantization_tax(request: BuildRequest, model: ModelInfo, log) -> tuple[dict | None, str | None]:
    """The quantization check's figures when a float model is available (its gate must pass), else why it did not run."""
    if request.float_model is None and request.model is not None:
        return None, "this build has no float model; give --float-model FILE.keras, the model the int8 model was converted from"
    float_path = Path(request.float_model) if request.float_model else qcheck.REFERENCE_FLOAT
    tax = qcheck.run_qcheck(float_path, model, None, None, qcheck.load_limits(None, {}), None, log)
    qcheck.require_gate(tax)
    log(f"quantization gate passed on {len(tax['conditions'])} conditions (figures in report.html; 'hostgen qcheck' prints them)")
    return tax, None
