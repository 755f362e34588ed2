"""Faults, with the real broker and real processes: broker and gateway killed mid-run, links unplugged,
garbage on a link, a board rebooting mid-stream. Nothing lost, nothing duplicated, order kept per board."""

from __future__ import annotations

import time

from gateway_support import GatewayProcess, PlayedBoard, Traffic, check_delivery, gateway_args, wait_for


def _boards(tmp_path, count):
    boards = [PlayedBoard(tmp_path / f"board{i}", node=i + 1) for i in range(count)]
    for board in boards:
        board.boot()
    return boards


def test_broker_stopped_and_restarted_mid_run_loses_nothing_and_flags_every_resend(tmp_path, broker, subscriber):
    """QoS 1 is at least once: a message the broker took but whose PUBACK the outage cut off is sent
    again. Every such re-send carries packet/resent, so a subscriber that drops a repeated
    (board, packet/seq) only when flagged sees each packet exactly once; check_delivery asserts that."""
    boards = _boards(tmp_path, 3)
    gateway = GatewayProcess(tmp_path, gateway_args(broker, boards, tmp_path / "spool")).start()
    traffic = Traffic(boards, 60)
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
        traffic.start()
        for outage in range(3):
            time.sleep(1.0)
            broker.stop()
            time.sleep(1.5)
            broker.start()
            wait_for(lambda: len(subscriber.of("NBIRTH")) == outage + 2, 15, "the gateway's NBIRTH after the restart")
        time.sleep(0.5)
        traffic.stop()
        figures = check_delivery(subscriber, boards)
    finally:
        traffic.stop()
        gateway.stop()
    assert all(f["lost"] == 0 and f["duplicated"] <= f["resent"] for f in figures.values()), figures
    births = [m.payload["metrics"]["bdSeq"] for m in subscriber.of("NBIRTH")]
    assert births == [0, 1, 2, 3], "bdSeq goes up by one per MQTT session"
    historical = [m for m in subscriber.of("DDATA") if m.payload["historical"]]
    assert historical, "what waited in the spool during an outage is published as historical"


def test_gateway_sigkilled_and_restarted_resumes_from_its_spool(tmp_path, broker, subscriber):
    boards = _boards(tmp_path, 3)
    args = gateway_args(broker, boards, tmp_path / "spool")
    gateway = GatewayProcess(tmp_path, args).start()
    traffic = Traffic(boards, 60)
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
        traffic.start()
        for kill in range(3):
            time.sleep(1.0)
            gateway.kill()
            time.sleep(0.5)
            gateway = GatewayProcess(tmp_path, args).start()
            wait_for(lambda: len(subscriber.of("NBIRTH")) == kill + 2, 20, "the restarted gateway's NBIRTH")
        time.sleep(0.5)
        traffic.stop()
        figures = check_delivery(subscriber, boards)
    finally:
        traffic.stop()
        gateway.stop()
    assert all(f["lost"] == 0 for f in figures.values()), figures
    assert len(subscriber.of("NDEATH")) >= 3, "each SIGKILL fires the session's Will: NDEATH"
    assert all(f["duplicated"] <= f["resent"] for f in figures.values()), figures
