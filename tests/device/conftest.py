"""Device-tier fixtures: scenario recordings and the reference's view of them."""

from __future__ import annotations

import numpy as np
import pytest
from device_support import RATE, board_config, machine_run, scenario_machine

from hostgen.board.replay import FirmwareWorkspace
from hostgen.config.app import load_app
from hostgen.config.board import load_board
from hostgen.dsp.calibration import recording_calibration
from hostgen.dsp.plan import plan_dsp


@pytest.fixture(scope="session")
def scenarios() -> dict[str, tuple[np.ndarray, dict]]:
    """name -> (int16 (samples, 1) recording, facts about it)."""
    machine, rng = scenario_machine(31)
    out = {}
    out["normal"] = (machine_run(machine, 30, rng), {})
    fault_at = 10 * RATE
    out["bearing_fault"] = (np.concatenate([machine_run(machine, 10, rng), machine_run(machine, 20, rng, fault_counts=3000.0)]), {"fault_at": fault_at})
    impact = machine_run(machine, 15, rng)
    at = 10 * RATE + 3
    ring = np.arange(120)
    impact[at : at + 120] += (20000 * np.exp(-ring / 15) * np.sin(2 * np.pi * 260 * ring / RATE)).astype(np.int64)
    out["impact"] = (impact, {"impact_at": at})
    stuck = machine_run(machine, 16, rng)
    stuck[10 * RATE : 13 * RATE] = stuck[10 * RATE]
    out["stuck"] = (stuck, {"stuck_from": 10 * RATE, "stuck_to": 13 * RATE})
    saturated = machine_run(machine, 16, rng)
    span = slice(10 * RATE, 13 * RATE)
    saturated[span] = saturated[span] * 30
    out["saturated"] = (saturated, {"saturated_from": 10 * RATE, "saturated_to": 13 * RATE})
    recovery = machine_run(machine, 16, rng)
    recovery[10 * RATE : 12 * RATE] = recovery[10 * RATE]
    for offset in range(0, 80, 9):  # impacts around the moment the checks resume after the stuck spell
        at = 12 * RATE + 40 + offset * 7
        recovery[at : at + 30] += (15000 * np.exp(-ring[:30] / 6)).astype(np.int64)
    out["stuck_then_impacts"] = (recovery, {})
    return {name: (np.clip(x, -32768, 32767).astype(np.int16).reshape(-1, 1), facts) for name, (x, facts) in out.items()}


@pytest.fixture(scope="session")
def board():
    return load_board("stm32f4")


@pytest.fixture(scope="session")
def plan(board):
    return plan_dsp(board, None)


@pytest.fixture(scope="session")
def app():
    return load_app()


@pytest.fixture(scope="session")
def calibrated_config(plan, tmp_path_factory) -> str:
    """Thresholds calibrated on a minute of the scenario machine's normal running."""
    machine, rng = scenario_machine(31)
    path = tmp_path_factory.mktemp("calibration") / "normal.npy"
    np.save(path, machine_run(machine, 60, rng).astype(np.int16))
    calibration = recording_calibration(plan.app, plan.design, [path], [])
    return board_config(plan, calibration.thresholds, calibration.peak_limits, calibration.energy_limits)


@pytest.fixture(scope="module")
def workspace(board):
    """The tier-1 firmware compiled for the unix port, with a filesystem of its own (one per test module)."""
    with FirmwareWorkspace(board) as space:
        yield space
