"""`hostgen monitor`: the live view of a packet stream, its counts, and what it saves."""

from __future__ import annotations

import csv

import numpy as np
from helpers import run_hostgen

from hostgen.board.packets import encode
from hostgen.board.stream import WINDOW_COLUMNS


def test_monitor_shows_counts_and_saves_csv_and_windows(tmp_path):
    stream = tmp_path / "gateway.bin"
    stream.write_bytes(
        encode("BOOT", 1, 0, 0, major=0, minor=1, patch=0, channels=1, rate_hz=1000, block=8, window=256, stride=128)
        + encode("ALERT", 1, 1, 5, channel=0, rule=0, raised=1, value=2000, limit=1200, sample=4096)
        + b"\x13\x37 noise\x00"
        + encode("WINDOW", 1, 2, 9, channel=0, decision=2, tier=0, rule=1, score_q8=400, start_sample=3840,
                 mean=3, rms=250, peak=1900, crest_q8=1900, kurtosis_q8=1200, zcr=140)
        + encode("HEARTBEAT", 1, 3, 5000, uptime_ms=5000, heap_free=20000)
    )
    prefix = tmp_path / "shift"
    result = run_hostgen("monitor", "--port", stream, "--save", prefix, "--board", "stm32f4")
    assert result.returncode == 0, result.stderr
    assert "fast path peak RAISED on ch0 at sample 4096" in result.stdout
    assert "FAULT by fallback, rule peak>=fault" in result.stdout
    assert "1 ALERT, 1 BOOT, 1 HEARTBEAT, 1 WINDOW; 1 bad frames" in result.stdout
    rows = list(csv.DictReader((tmp_path / "shift.csv").open()))
    assert [r["type"] for r in rows] == ["BOOT", "ALERT", "WINDOW", "HEARTBEAT"]
    assert rows[1]["value"] == "2000" and rows[2]["rms"] == "250"
    windows = np.load(tmp_path / "shift_windows.npy")
    assert windows.shape == (1, len(WINDOW_COLUMNS))
    assert windows[0, WINDOW_COLUMNS.index("rms")] == 250 and windows[0, WINDOW_COLUMNS.index("start_sample")] == 3840
