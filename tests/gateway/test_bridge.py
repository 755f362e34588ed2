"""The bridge with a real broker and a real subscriber: boards played onto ptys with the project's encoder."""

from __future__ import annotations

from gateway_support import GatewayProcess, PlayedBoard, gateway_args, wait_for


def test_packets_reach_the_subscriber_as_sparkplug_b_to_the_packet(tmp_path, broker, subscriber):
    boards = [PlayedBoard(tmp_path / f"board{i}", node=i + 1) for i in range(3)]
    gateway = GatewayProcess(tmp_path, gateway_args(broker, boards, tmp_path / "spool")).start()
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
        for board in boards:
            board.boot()
            board.heartbeat()
            board.alert(value=7000 + board.node)
            board.window()
        for board in boards:
            wait_for(lambda: len(subscriber.board_packets(board.path.name)) == 4, 10, f"{board.path.name}'s packets")
            assert subscriber.board_packets(board.path.name) == board.sent
        alert = [m for m in subscriber.of("DDATA", "board1") if m.payload["metrics"]["packet/type"] == "ALERT"][0]
        assert alert.payload["metrics"]["alert/value"] == 7002 and alert.payload["metrics"]["alert/rule"] == "peak"
        assert alert.payload["metrics"]["alert/raised"] is True and not alert.payload["historical"]
        window = [m for m in subscriber.of("DDATA", "board0") if m.payload["metrics"]["packet/type"] == "WINDOW"][0]
        assert window.payload["metrics"]["window/decision"] == "fault" and window.payload["metrics"]["window/features/mean"] == -3
        assert window.payload["metrics"]["window/score"] == 300 / 256
        birth = subscriber.of("NBIRTH")[0].payload
        assert birth["seq"] == 0 and birth["metrics"]["bdSeq"] == 0
        seqs = [m.payload["seq"] for m in subscriber.messages if m.kind not in ("NDEATH", "NCMD")]
        assert seqs == list(range(len(seqs))), "Sparkplug seq: NBIRTH 0, then one more per message"
        dbirth = subscriber.of("DBIRTH", "board2")[0].payload["metrics"]
        assert dbirth["boot/rate_hz"] == 1000 and "health/heap_free" in dbirth and dbirth["health/heap_free"] is None
    finally:
        assert gateway.stop() == 0, gateway.text()
        for board in boards:
            board.close()
    assert subscriber.of("NDEATH"), "a clean stop publishes NDEATH"
