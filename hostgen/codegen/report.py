"""build/<board>/report.html: what a build holds and what it costs, on one self-contained page.

Plots are drawn with matplotlib and embedded as base64 PNG data; the page loads nothing else.
A plot is drawn once per distinct set of figures it shows and kept in build/.cache/report/.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from hostgen.codegen.render import display_path, file_sha256, render_templates
from hostgen.config.board import Board
from hostgen.data import synthetic as dataset
from hostgen.dsp import calibration, features, fir
from hostgen.dsp.calibration import synthetic_window_features
from hostgen.dsp.features import DECISIONS, FEATURES, SUSPECT, rules_for
from hostgen.dsp.plan import DspPlan
from hostgen.model.budget import SizeReport
from hostgen.model.graph import macs_by_op
from hostgen.model.reference import MODEL_NAME, reference_figures
from hostgen.model.tflite import ModelInfo
from hostgen.paths import REFERENCE_DIR
from hostgen.qcheck.tax import tensorflow_version
from hostgen.util.cache import cached_bytes, code_key

DISTRIBUTIONS = {"hostgen": "faultline-hostgen", **{name: name for name in ("numpy", "scipy", "jinja2", "matplotlib", "tflite-micro")}}
COLOURS = {"firmware": "#7f7f7f", "stack": "#bcbd22", "heap": "#17becf", "arena": "#d62728", "free": "#e8e8e8",
           "model": "#1f77b4", "region": "#aec7e8", "float": "#2ca02c", "int8": "#d62728", "fault": "#ff7f0e"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    return buffer.getvalue()


def _cached_png(name: str, shown, draw) -> bytes:
    """The plot `draw()` makes of the figures in `shown`, drawn only when these figures or this code are new."""
    key = code_key(Path(__file__), json.dumps([name, shown], sort_keys=True, default=str))
    return cached_bytes("report", key, ".png", draw).read_bytes()


def sram_segments(board: Board, size: SizeReport) -> list[tuple[str, int, str]]:
    """Shares of the arena's SRAM region (not addresses): (what, bytes, colour)."""
    micropython = board["micropython"]
    used = [
        ("MicroPython static data", micropython["static_ram_bytes"], COLOURS["firmware"]),
        ("MicroPython stack", micropython["stack_bytes"], COLOURS["stack"]),
        ("MicroPython GC heap", micropython["heap_bytes"], COLOURS["heap"]),
        ("tensor arena (measured)", size.arena_bytes, COLOURS["arena"]),
    ]
    return used + [("free", board.arena_region.size_bytes - sum(b for _, b, _ in used), COLOURS["free"])]


def flash_segments(board: Board, size: SizeReport) -> list[tuple[str, int, int, str]]:
    """Flash by offset from its origin: (what, offset, bytes, colour)."""
    flash = board["flash"]
    model_offset = flash["model_origin"] - flash["origin"]
    return [
        ("firmware (board file's figure)", 0, flash["firmware_bytes"], COLOURS["firmware"]),
        ("model flash region", model_offset, flash["model_size_bytes"], COLOURS["region"]),
        ("model", model_offset, size.model_bytes, COLOURS["model"]),
    ]


def memory_plot(board: Board, size: SizeReport) -> bytes:
    pyplot = _pyplot()
    figure, (sram_axis, flash_axis) = pyplot.subplots(2, 1, figsize=(10, 3.6))
    left = 0
    for label, count, colour in sram_segments(board, size):
        sram_axis.barh(0, count / 1024, left=left / 1024, color=colour, edgecolor="white", label=f"{label} {count:,} B")
        left += count
    limit = (board.firmware_ram_bytes + size.budget_bytes) / 1024
    sram_axis.axvline(limit, color="black", linestyle="--", linewidth=1.5, label=f"arena limit: {size.budget_fraction:.0%} budget")
    sram_axis.set_title(f"SRAM: {board.arena_region.name}, {board.arena_region.size_bytes:,} bytes (shares, not addresses)")
    sram_axis.set_xlabel("KiB")
    sram_axis.set_yticks([])
    sram_axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    flash_size = board["flash"]["size_bytes"]
    flash_axis.barh(0, flash_size / 1024, color=COLOURS["free"], label=f"flash {flash_size:,} B")
    for label, offset, count, colour in flash_segments(board, size):
        flash_axis.barh(0, count / 1024, left=offset / 1024, color=colour, label=f"{label} {count:,} B")
    flash_axis.set_title(f"flash from 0x{board['flash']['origin']:08X}: model {size.model_bytes:,} of {size.model_flash_bytes:,} bytes of its region")
    flash_axis.set_xlabel("KiB from the flash origin")
    flash_axis.set_yticks([])
    flash_axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _png(figure)


def recall_plot(tax: dict) -> bytes:
    pyplot = _pyplot()
    records = tax["conditions"]
    positions = np.arange(len(records))
    figure, axis = pyplot.subplots(figsize=(11, 4.2))
    axis.bar(positions - 0.2, [r["float"]["fault_recall"] for r in records], 0.4, color=COLOURS["float"], label="float (Keras)")
    axis.bar(positions + 0.2, [r["int8_tflm"]["fault_recall"] for r in records], 0.4, color=COLOURS["int8"], label="int8 (TFLM)")
    axis.set_xticks(positions, [r["condition"] for r in records], rotation=60, ha="right", fontsize=8)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("fault recall")
    axis.set_title(f"fault recall per condition, {tax['data']['windows']} windows each ({tax['data']['fault_windows']} fault)")
    axis.grid(True, axis="y", alpha=0.3)
    axis.legend(loc="lower left")
    return _png(figure)


def thresholds_plot(plan: DspPlan) -> bytes:
    """Each rule feature over the synthetic population the default thresholds come from, with this build's thresholds."""
    pyplot = _pyplot()
    settings, window = plan.app["fallback"], plan.app["sampling"]["window_samples"]
    span = window + plan.design.taps
    normal_counts, _ = dataset.make_windows(settings["seed"], settings["normal_windows"], fault_fraction=0.0, window=span)
    held_counts, held_labels = dataset.make_windows(settings["seed"] + 1, 2 * settings["heldout_windows"], fault_fraction=0.5, window=span)
    normal = synthetic_window_features(plan.design, normal_counts, window)
    fault = synthetic_window_features(plan.design, held_counts[held_labels == dataset.FAULT], window)
    rules = rules_for(settings["decide_on"])
    chosen = [f for f in FEATURES if f in settings["decide_on"]]
    figure, axes = pyplot.subplots(1, len(chosen), figsize=(3 * len(chosen), 3.2), squeeze=False)
    for axis, feature in zip(axes[0], chosen):
        index = FEATURES.index(feature)
        bins = np.linspace(min(normal[:, index].min(), fault[:, index].min()), max(normal[:, index].max(), fault[:, index].max()), 50)
        axis.hist(normal[:, index], bins, color=COLOURS["float"], alpha=0.6, label=f"normal ({len(normal)})")
        axis.hist(fault[:, index], bins, color=COLOURS["fault"], alpha=0.6, label=f"fault ({len(fault)})")
        for rule in (r for r in rules if r.feature == feature):
            threshold = plan.calibration.thresholds[0][rules.index(rule)]
            axis.axvline(threshold, color="black", linestyle=":" if rule.level == SUSPECT else "-",
                         label=f"{'under ' if rule.below else ''}{DECISIONS[rule.level]} {threshold}")
        axis.set_yscale("log")
        axis.set_title(feature)
        axis.legend(fontsize=7)
    return _png(figure)


def heldout_plot(calibration) -> bytes:
    """Per channel, the calibration's held-out figures: windows flagged per held-out normal part and per fault recording."""
    pyplot = _pyplot()
    report = calibration.report
    if "channels" in report:
        panels = [
            (f"channel {c['channel']}",
             [(Path(path).stem, part.get("flagged", 0), part["fast_path_trips"], False) for path, part in c["heldout_per_recording"].items()]
             + [(Path(path).stem, part.get("flagged", 0), part["fast_path_trips"], True) for path, part in c["faults"].items()])
            for c in report["channels"]
        ]
    else:
        panels = [("every channel (synthetic population)",
                   [("held-out normal", report["heldout_normal"].get("flagged", 0), 0, False),
                    ("held-out fault", report["heldout_fault"].get("flagged", 0), 0, True)])]
    figure, axes = pyplot.subplots(1, len(panels), figsize=(max(4.0, 1.2 * max(len(bars) for _, bars in panels)) * len(panels), 3.2),
                                   squeeze=False)
    for axis, (title, bars) in zip(axes[0], panels):
        positions = np.arange(len(bars))
        axis.bar(positions, [share for _, share, _, _ in bars],
                 color=[COLOURS["fault"] if fault else COLOURS["float"] for *_, fault in bars])
        for position, (_, share, trips, _) in zip(positions, bars):
            axis.annotate(f"{share:.1%}" + (f", {trips} trips" if trips else ""), (position, share), ha="center", va="bottom", fontsize=7)
        axis.set_xticks(positions, [name[:16] for name, *_ in bars], rotation=30, ha="right", fontsize=7)
        axis.set_ylim(0, 1.1)
        axis.set_ylabel("windows flagged")
        axis.set_title(title, fontsize=9)
    figure.suptitle("held out: normal parts (green: false alarms), fault recordings (orange: detection)", fontsize=8)
    return _png(figure)


def tool_versions(tax: dict | None) -> list[tuple[str, str]]:
    versions = [("python", platform.python_version())] + [(name, metadata.version(dist)) for name, dist in DISTRIBUTIONS.items()]
    if tax is not None:
        versions.append(("tensorflow", f"{tax['tools']['tensorflow']} (measured the quantization tax)"))
    elif "tensorflow" in sys.modules:
        versions.append(("tensorflow", tensorflow_version()))
    else:
        versions.append(("tensorflow", "not used by this build"))
    return versions


def render_report(board: Board, model: ModelInfo, size: SizeReport, plan: DspPlan, tax: dict | None, tax_note: str | None,
                  inputs: dict[str, Path], files: dict[str, bytes], command: str) -> bytes:
    """report.html, rendered from templates/report.html.j2 with the build's figures and plots."""
    macs = macs_by_op(model)
    sizes = {key: getattr(size, key) for key in ("arena_bytes", "budget_bytes", "budget_fraction", "model_bytes", "model_flash_bytes")}
    population = {
        "app": {key: plan.app[key] for key in ("sampling", "fallback")},
        "coefficients": plan.design.coeffs.tolist(),
        "thresholds": plan.calibration.thresholds,
        "code": [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in (dataset, features, calibration, fir)],
    }
    plots = {
        "memory": _cached_png("memory", [board.raw, sizes], lambda: memory_plot(board, size)),
        "fir": files[f"fir_{plan.design.name}_response.png"],
        "thresholds": _cached_png("thresholds", population, lambda: thresholds_plot(plan)),
        "heldout": _cached_png("heldout", plan.calibration.report, lambda: heldout_plot(plan.calibration)),
        **({"recall": _cached_png("recall", [tax["data"], tax["conditions"]], lambda: recall_plot(tax))} if tax else {}),
    }
    images = {name: base64.b64encode(png).decode() for name, png in plots.items()}
    context = {
        "board": board,
        "size": size,
        "sram": sram_segments(board, size),
        "flash": flash_segments(board, size),
        "model": model,
        "ops": [(op, model.op_counts[op], macs.get(op, 0)) for op in model.ops],
        "total_macs": sum(macs.values()),
        "tax": tax,
        "tax_note": tax_note,
        "reference": reference_figures() if model.path.resolve() == (REFERENCE_DIR / f"{MODEL_NAME}.tflite").resolve() else None,
        "filter": plan.design.summary(),
        "calibration": plan.calibration,
        "rules": [rule.label for rule in rules_for(plan.app["fallback"]["decide_on"])],
        "images": images,
        "inputs": [(role, display_path(path), file_sha256(path)) for role, path in inputs.items()],
        "tools": tool_versions(tax),
        "command": command,
    }
    return render_templates({"report.html": "codegen/report.html.j2"}, list(inputs.items()), command, context)["report.html"]
