"""Faults, with the real broker and real processes: broker and gateway killed mid-run, links unplugged,
garbage on a link, a board rebooting mid-stream. Nothing lost, nothing duplicated, order kept per board."""

from __future__ import annotations

import time

import pytest
from gateway_support import GatewayProcess, PlayedBoard, Traffic, check_delivery, gateway_args, wait_for


def _boards(tmp_path, count):
    boards = [PlayedBoard(tmp_path / f"board{i}", node=i + 1) for i in range(count)]
    for board in boards:
        board.boot()
    return boards


# The fast tier kills the broker: the outage, the spool and the redelivery of what the broker lost; a SIGTERM's saved queue in `make test`
@pytest.mark.parametrize("kill", [pytest.param(False, marks=pytest.mark.slow), True], ids=["sigterm", "sigkill"])
def test_broker_stopped_and_restarted_mid_run_loses_nothing_and_flags_every_resend(tmp_path, broker, subscriber, kill):
    """QoS 1 is at least once: a message the broker took but whose PUBACK the outage cut off is sent
    again. Every such re-send carries packet/resent, so a subscriber that drops a repeated
    (board, packet/seq) only when flagged sees each packet exactly once; check_delivery asserts that.

    The subscriber is away before each outage, so the broker holds a queue for it. A SIGTERMed
    mosquitto saves it; a SIGKILLed one loses what came after its last autosave, all of it
    acknowledged: the gateway's redelivery window (--redeliver-s, default 5 s) sends that again."""
    boards = _boards(tmp_path, 3)
    gateway = GatewayProcess(tmp_path, gateway_args(broker, boards, tmp_path / "spool")).start()
    traffic = Traffic(boards, 60)
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
        traffic.start()
        for outage in range(2):
            time.sleep(1.0)
            subscriber.go_offline()
            time.sleep(1.5)
            broker.stop(kill=kill)
            time.sleep(1.5)
            broker.start()
            subscriber.come_back()
            wait_for(lambda: len({m.payload["metrics"]["bdSeq"] for m in subscriber.of("NBIRTH")}) == outage + 2, 15,
                     "the gateway's NBIRTH after the restart")
        time.sleep(0.5)
        traffic.stop()
        figures = check_delivery(subscriber, boards)
    finally:
        traffic.stop()
        gateway.stop()
    assert all(f["lost"] == 0 and f["duplicated"] <= f["resent"] for f in figures.values()), figures
    births = list(dict.fromkeys(m.payload["metrics"]["bdSeq"] for m in subscriber.of("NBIRTH")))
    assert births == [0, 1, 2], "bdSeq goes up by one per MQTT session"
    if kill:
        assert "will be published again (packet/resent)" in gateway.text(), "the broker's loss was redelivered"
    historical = [m for m in subscriber.of("DDATA") if m.payload["historical"]]
    assert historical, "what waited in the spool during an outage is published as historical"


def test_gateway_sigkilled_and_restarted_resumes_from_its_spool(tmp_path, broker, subscriber):
    """Killed, the gateway loses what it had read and not committed, and while it is down what the boards
    send is gone too (a UART keeps nothing for a reader that is not there: each pty's input is flushed).
    The restarted gateway asks each board for everything after the newest packet it committed (RESEND),
    so nothing is lost, nothing is missing, and order is kept. The boards keep 16 KiB of frames
    ([link] resend_bytes = 16384): this traffic is six times a fault storm."""
    boards = [PlayedBoard(tmp_path / f"board{i}", node=i + 1, ring_bytes=16384) for i in range(3)]
    for board in boards:
        board.boot()
    args = gateway_args(broker, boards, tmp_path / "spool")
    gateway = GatewayProcess(tmp_path, args).start()
    traffic = Traffic(boards, 60)
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
        traffic.start()
        for kill in range(2):
            time.sleep(1.0)
            gateway.kill()
            time.sleep(0.5)
            for board in boards:
                board.lose_unread()
            gateway = GatewayProcess(tmp_path, args).start()
            wait_for(lambda: len(subscriber.of("NBIRTH")) == kill + 2, 20, "the restarted gateway's NBIRTH")
        time.sleep(1.0)
        traffic.stop()
        figures = check_delivery(subscriber, boards)
        status = run_status(tmp_path / "spool")
    finally:
        traffic.stop()
        gateway.stop()
    assert all(f["lost"] == 0 for f in figures.values()), figures
    assert all(board["missing"] == 0 and board["gaps"] == 0 for board in status.values()), status
    assert len(subscriber.of("NDEATH")) >= 2, "each SIGKILL fires the session's Will: NDEATH"
    assert all(f["duplicated"] <= f["resent"] for f in figures.values()), figures


def test_link_unplugged_and_replugged_garbage_and_a_board_reboot(tmp_path, broker, subscriber):
    boards = _boards(tmp_path, 2)
    gateway = GatewayProcess(tmp_path, gateway_args(broker, boards, tmp_path / "spool", extra=["--silent-s", "1.5"])).start()
    steady, flaky = boards
    try:
        wait_for(lambda: len(subscriber.board_packets("board0")) == 1 and len(subscriber.board_packets("board1")) == 1, 15,
                 "both boards' BOOT")
        flaky.heartbeat()
        flaky.raw(b"\x13\x37garbage\x00\xff" * 20 + b"\x05\x01\x02\x00")  # garbage, and a frame cut short
        flaky.alert(garbled=True)  # noise on the line: a bad frame, which the board still holds
        flaky.alert()
        steady.heartbeat()
        wait_for(lambda: flaky.read_back() is not None and ("ALERT", 3) in subscriber.board_packets("board1"), 10,
                 "the alerts after the garbage")
        assert subscriber.board_packets("board1") == [("BOOT", 0), ("HEARTBEAT", 1), ("ALERT", 2), ("ALERT", 3)], \
            "the garbled one sent again (RESEND) and published in its place"
        flaky.unplug()
        steady.heartbeat()
        wait_for(lambda: subscriber.of("DDEATH", "board1"), 10, "DDEATH for the unplugged board (silent)")
        flaky.replug()
        flaky.window()
        wait_for(lambda: ("WINDOW", 4) in subscriber.board_packets("board1"), 15, "the window after the replug")
        births_before = len(subscriber.of("DBIRTH", "board1"))
        assert births_before == 2, "the replugged board is born again"
        flaky.boot()  # the board resets: BOOT, sequence from 0
        flaky.heartbeat()
        flaky.heartbeat(config_hash=999)  # its settings changed
        wait_for(lambda: subscriber.board_packets("board1")[-3:] == [("BOOT", 0), ("HEARTBEAT", 1), ("HEARTBEAT", 2)], 10,
                 "the rebooted board's packets")
        steady.heartbeat()
        wait_for(lambda: len(subscriber.board_packets("board0")) == 4, 10, "the steady board, served throughout")
    finally:
        gateway.stop()
    kinds = [m.kind for m in subscriber.messages if m.device == "board1"]
    assert kinds[-6:] == ["DDEATH", "DBIRTH", "DDATA", "DDEATH", "DBIRTH", "DDATA"], kinds
    status = run_status(tmp_path / "spool")
    assert status["board1"]["restarts"] == 1 and status["board1"]["bad_frames"] >= 21 and status["board0"]["bad_frames"] == 0
    assert status["board1"]["missing"] == 0, "the garbled frame was healed, not counted missing"
    assert subscriber.board_packets("board0") == steady.sent


def run_status(spool) -> dict:
    import json

    from helpers import run_hostgen

    result = run_hostgen("gateway", "--status", "--spool", spool, "--json")
    assert result.returncode == 0, result.stderr
    return {b["device"]: b for b in json.loads(result.stdout)["boards"]}


def test_a_bounded_spool_drops_the_oldest_counts_and_publishes_it(tmp_path, broker, subscriber):
    board = PlayedBoard(tmp_path / "board0")
    gateway = GatewayProcess(tmp_path, gateway_args(broker, [board], tmp_path / "spool", extra=["--spool-max-bytes", "2000"])).start()
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
        broker.stop()
        board.boot()
        for _ in range(99):
            board.window()
        wait_for(lambda: run_status(tmp_path / "spool")["board0"]["dropped"] > 0, 10, "drops")
        broker.start()
        wait_for(lambda: any(m.payload["metrics"].get("spool/dropped") for m in subscriber.of("NBIRTH") + subscriber.of("NDATA")),
                 15, "the drop count published")
        got = wait_for(lambda: subscriber.board_packets("board0")[-1:] == [board.sent[-1]] and subscriber.board_packets("board0"), 15,
                       "the newest packets")
    finally:
        gateway.stop()
    dropped = run_status(tmp_path / "spool")["board0"]["dropped"]
    assert got == board.sent[-len(got):] and len(got) + dropped == len(board.sent), "the oldest went, every one counted"
