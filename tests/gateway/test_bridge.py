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


def test_prometheus_metrics_and_status(tmp_path, broker, subscriber):
    import urllib.request

    from gateway_support import free_port
    from helpers import run_hostgen

    boards = [PlayedBoard(tmp_path / "board0")]
    port = free_port()
    gateway = GatewayProcess(tmp_path, gateway_args(broker, boards, tmp_path / "spool", extra=["--metrics-port", str(port)])).start()
    try:
        boards[0].boot()
        boards[0].raw(b"junk\x00")
        boards[0].heartbeat()
        boards[0].seq += 3  # three packets lost on the wire
        boards[0].alert()
        wait_for(lambda: len(subscriber.board_packets("board0")) == 3, 15, "three packets")

        def scrape():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return ""

        text = wait_for(lambda: (t := scrape()) and 'faultline_packets_published_total{board="board0"} 3.0' in t and t, 10,
                        "the published count")
        for line in ['faultline_packets_received_total{board="board0"} 3.0', 'faultline_bad_frames_total{board="board0"} 1.0',
                     'faultline_sequence_missing_total{board="board0"} 3.0', "faultline_broker_connected 1.0",
                     'faultline_link_up{board="board0"} 1.0', "faultline_publish_latency_seconds_count 3.0"]:
            assert line in text, line
        gap = [m for m in subscriber.of("DDATA", "board0") if m.payload["metrics"]["packet/type"] == "ALERT"][0]
        assert gap.payload["metrics"]["packet/missing_before"] == 3, "a gap is published with the packet after it"
        status = run_hostgen("gateway", "--status", "--spool", tmp_path / "spool")
        assert status.returncode == 0, status.stderr
        assert "running" in status.stdout and "connected" in status.stdout
        row = next(line for line in status.stdout.splitlines() if line.startswith("board0"))
        assert row.split()[6:11] == ["3", "3", "0", "3", "1"], row  # in, published, spooled, missing, gaps
    finally:
        gateway.stop()
    assert "not running" in run_hostgen("gateway", "--status", "--spool", tmp_path / "spool").stdout


def test_sigterm_with_the_broker_away_keeps_the_spool_for_the_next_start(tmp_path, broker, subscriber):
    boards = [PlayedBoard(tmp_path / "board0")]
    args = gateway_args(broker, boards, tmp_path / "spool")
    gateway = GatewayProcess(tmp_path, args).start()
    wait_for(lambda: subscriber.of("NBIRTH"), 15, "NBIRTH")
    broker.stop()
    boards[0].boot()
    for _ in range(30):
        boards[0].window()
    wait_for(lambda: "packets_in\": 31" in __import__("helpers").run_hostgen("gateway", "--status", "--spool", tmp_path / "spool",
                                                                               "--json").stdout, 10, "31 packets spooled")
    assert gateway.stop() == 0
    assert "spool flushed, 31 packet(s) in it" in gateway.text()
    broker.start()
    gateway = GatewayProcess(tmp_path, args).start()
    try:
        wait_for(lambda: subscriber.board_packets("board0") == boards[0].sent, 20, "the spooled packets after the restart")
    finally:
        gateway.stop()


def test_a_config_file_names_boards_credentials_and_keys(tmp_path, broker, subscriber):
    from gateway_support import PASSWORD, USER

    board = PlayedBoard(tmp_path / "ttyUSB0")
    (tmp_path / "broker.secret").write_text(PASSWORD + "\n")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "press3.key").write_text("ab" * 32 + "\n")
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ngroup = "hall2"\nedge_node = "gw-hall2"\nspool = "spool"\nsilent_s = 30\n'
                      f'[broker]\nurl = "{broker.url}"\nusername = "{USER}"\npassword_file = "broker.secret"\n'
                      f'[spool]\nmax_bytes = 1000000\nmax_age_s = 3600\n'
                      f'[[board]]\nname = "press3"\nport = "{board.path}"\nkey = "keys/press3.key"\n')
    gateway = GatewayProcess(tmp_path, ["--config", str(config)]).start()
    try:
        board.boot()
        wait_for(lambda: subscriber.of("DBIRTH", "press3"), 15, "press3's DBIRTH")
        assert subscriber.of("DBIRTH", "press3")[0].topic == "spBv1.0/hall2/DBIRTH/gw-hall2/press3"
    finally:
        gateway.stop()
    from helpers import run_hostgen

    status = run_hostgen("gateway", "--status", "--config", config)
    assert status.returncode == 0 and "press3" in status.stdout, status.stderr
