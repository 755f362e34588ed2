"""A build's model files: the aligned model arrays, the TFLM op list, and the family's linker placement."""

from __future__ import annotations

from hostgen.codegen.families import family_of
from hostgen.codegen.render import check_identifier, render_templates
from hostgen.config.board import Board
from hostgen.model.arena import HOST_NOTE, measure_arena
from hostgen.model.budget import SizeReport
from hostgen.model.tflite import ModelInfo

MODEL_SECTION = ".model_data"
ARENA_SECTION = ".tensor_arena"
BYTES_PER_ROW = 12
TEMPLATES = {
    "model_data.c": "codegen/model_data.c.j2",
    "model_data.h": "codegen/model_data.h.j2",
    "model_ops.h": "codegen/model_ops.h.j2",
}


def _model_rows(data: bytes) -> list[str]:
    return [
        " ".join(f"0x{byte:02x}," for byte in data[start : start + BYTES_PER_ROW])
        for start in range(0, len(data), BYTES_PER_ROW)
    ]


def render_model_files(board: Board, model: ModelInfo, report: SizeReport, name: str, command: str) -> dict[str, bytes]:
    """The model arrays, op list and linker placement for the board."""
    check_identifier(name)
    context = {
        "board": board,
        "flash": board["flash"],
        "arena_region": board.arena_region,
        "other_sram": [r for r in board.sram if r.name not in board["budget"]["arena_regions"]],
        "model": model,
        "input": model.inputs[0],
        "output": model.outputs[0],
        "ops_and_methods": list(zip(model.ops, model.resolver_methods)),
        "op_counts": model.op_counts,
        "model_rows": _model_rows(model.data),
        "name": name,
        "NAME": name.upper(),
        "alignment": board.alignment_bytes,
        "arena": measure_arena(model),
        "arena_note": HOST_NOTE,
        "budget_bytes": report.budget_bytes,
        "budget_percent": round(report.budget_fraction * 100, 1),
        "model_section": MODEL_SECTION,
        "arena_section": ARENA_SECTION,
    }
    templates = TEMPLATES | family_of(board).templates
    files = render_templates(templates, [("model", model.path), ("board", board.path)], command, context)
    files[f"{name}.tflite"] = model.data
    return files
