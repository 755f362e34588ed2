"""What the host and the firmware share has one source (hostgen/constants.py): every copy equals it."""

from __future__ import annotations

import ast

import pytest

from hostgen import constants
from hostgen.board.packets import TYPES
from hostgen.paths import FIRMWARE_DIR


def firmware_constants(module: str) -> dict:
    return literal_assignments((FIRMWARE_DIR / f"{module}.py").read_text())


def literal_assignments(source: str) -> dict:
    """A module's top-level `NAME = const(N)`, `NAME = N` and `NAME = ("a", ...)` assignments."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "const":
                value = value.args[0]
            try:
                found[node.targets[0].id] = ast.literal_eval(value)
            except ValueError:
                continue
    return found


def test_alert_rules():
    fastpath = firmware_constants("fastpath")
    assert fastpath["RULE_NAMES"] == constants.ALERT_RULES
    assert [fastpath[rule.upper()] for rule in constants.ALERT_RULES] == list(range(len(constants.ALERT_RULES)))


def test_tiers_events_and_the_raised_bit():
    pipeline = firmware_constants("pipeline")
    assert [pipeline[f"TIER_{name}"] for name in ("FALLBACK", "MODEL", "MODEL_ERROR", "MODEL_UNSURE", "MODEL_LATE", "MODEL_ADVISORY")] == list(range(len(constants.TIERS)))
    assert [pipeline[f"EVENT_{kind.upper()}"] for kind in constants.EVENT_KINDS] == [1, 2, 3]
    assert pipeline["RAISED_BIT"] == constants.ALERT_RAISED_BIT


def test_config_sources():
    settings = firmware_constants("settings")
    assert settings["SOURCES"] == constants.CONFIG_SOURCES
    assert [settings[name] for name in ("DEFAULTS", "FROM_FILE", "CORRUPT", "FOREIGN")] == list(range(len(constants.CONFIG_SOURCES)))
    assert firmware_constants("diag")["SOURCES"] == constants.CONFIG_SOURCE_TEXTS


def test_packet_types_and_version():
    packets = firmware_constants("packets")
    assert packets["VERSION"] == constants.PACKET_VERSION
    assert {name: packets[name] for name in constants.PACKET_TYPES} == {name: code for code, (name, _, _) in TYPES.items()}


@pytest.mark.parametrize("name, value", [("DECISIONS", constants.DECISIONS), ("NORMAL", constants.NORMAL),
                                         ("SUSPECT", constants.SUSPECT), ("FAULT", constants.FAULT),
                                         ("NO_RULE", constants.NO_RULE)])
def test_the_generated_fallback_takes_the_host_tables(name, value):
    from hostgen.codegen.dsp_files import render_dsp_files
    from hostgen.config.board import load_board
    from hostgen.dsp.plan import plan_dsp

    source = render_dsp_files(plan_dsp(load_board("stm32f4"), None), "test")["fallback.py"].decode()
    assert literal_assignments(source)[name] == value


def test_the_held_decision_slots_the_heap_count_assumes():
    assert firmware_constants("pipeline")["HELD_SLOTS"] == constants.HELD_DECISION_SLOTS
