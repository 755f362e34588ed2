"""`make gateway-demo`: every one of its boards reaches the plant, and the plant's command reaches its board."""

from __future__ import annotations

import re

import pytest
from gateway_support import have_mosquitto
from helpers import run_hostgen


@pytest.mark.slow  # eight virtual boards, a broker and a gateway for 20 s
def test_the_demo_hears_every_board_and_commands_one():
    if not have_mosquitto():
        pytest.skip("needs Debian mosquitto: `make setup`")
    result = run_hostgen("gateway-demo", "--seconds", "20", timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {m[1]: (int(m[2]), int(m[3]), m[4]) for m in re.finditer(r"^(press\d)\s+\S+\s+\S+\s+.+? ago\s+(\d+)\s+(\d+)\s+.*?(\d+/\d+)\s*$",
                                                                    result.stdout, re.M)}
    assert sorted(rows) == [f"press{i}" for i in range(1, 9)], result.stdout
    assert all(received > 0 and published == received for received, published, _ in rows.values()), rows
    assert rows["press3"][2] == "1/0", "the plant's DCMD was applied (ACK) on press3"
