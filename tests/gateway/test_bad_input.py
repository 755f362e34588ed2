"""Bad input, each a test: one clear `hostgen:` line (exit 2), or a counted, published rejection while the
gateway goes on serving the other boards; nothing the boards sent is lost."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from gateway_support import PASSWORD, PLANT, PLANT_PASSWORD, READER, READER_PASSWORD, USER, Broker, GatewayProcess, PlayedBoard, check_delivery, gateway_args, wait_for
from helpers import assert_user_error, run_hostgen

from hostgen.gateway.sparkplug import BOOLEAN, INT64, Metric, build_payload


def test_broker_unreachable_at_start_spools_until_it_comes(tmp_path, subscriber_factory):
    broker = Broker(tmp_path)  # configured, not started
    board = PlayedBoard(tmp_path / "board0")
    gateway = GatewayProcess(tmp_path, gateway_args(broker, [board], tmp_path / "spool")).start()
    try:
        board.boot()
        for _ in range(20):
            board.heartbeat()
        wait_for(lambda: "unreachable" in gateway.text(), 10, "the gateway to say the broker is unreachable")
        assert gateway.process.poll() is None, "the gateway keeps running without a broker"
        wait_for(lambda: '"packets_in": 21' in run_hostgen("gateway", "--status", "--spool", tmp_path / "spool", "--json").stdout,
                 10, "21 packets in the spool")
        broker.start()
        subscriber = subscriber_factory(broker)
        figures = check_delivery(subscriber, [board])
        assert figures["board0"]["lost"] == 0 and all(m.payload["historical"] for m in subscriber.of("DDATA"))
    finally:
        gateway.stop()
        broker.stop(kill=True)
    assert gateway.text().count("unreachable (") == 1, "one line per outage, not one per retry"


def test_wrong_credentials_is_one_line_and_exit_2(tmp_path, broker):
    board = PlayedBoard(tmp_path / "board0")
    args = gateway_args(broker, [board], tmp_path / "spool")
    args[1] = args[1].replace(PASSWORD, "wrong")
    result = run_hostgen("gateway", *args, timeout=60)
    assert_user_error(result, f"refused user '{USER}'", "password")


def test_config_naming_a_port_that_does_not_exist(tmp_path, broker):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ngroup = "line1"\n[broker]\nurl = "{broker.url}"\n[[board]]\nname = "press3"\nport = "/dev/ttyUSB77"\n')
    assert_user_error(run_hostgen("gateway", "--config", config), "press3", "/dev/ttyUSB77 does not exist")
    config.write_text('[gateway]\ngroup = "line/1"\n[[board]]\nport = "/dev/null"\n')
    assert_user_error(run_hostgen("gateway", "--config", config), "group id 'line/1'")
    config.write_text('[gateway]\ngroup = "line1"\ncolour = 3\n')
    assert_user_error(run_hostgen("gateway", "--config", config), "unknown key 'colour'")
    config.write_text('[gateway]\ngroup = "line1"\n[spool]\nredeliver_s = -1\n[[board]]\nport = "/dev/null"\n')
    assert_user_error(run_hostgen("gateway", "--config", config), "redeliver_s -1 is out of range", "0-3600")
    config.write_text('[gateway]\ngroup = "line1"\nprimary_host = "scada/1"\n[[board]]\nport = "/dev/null"\n')
    assert_user_error(run_hostgen("gateway", "--config", config), "primary host id 'scada/1'")
    assert_user_error(run_hostgen("gateway", "--port", "/dev/null", "--group", "line1", "--redeliver-s", "7200"),
                      "--redeliver-s: redeliver_s 7200 is out of range")


def test_two_gateways_claiming_one_edge_node_id(tmp_path, broker, subscriber):
    first_board, second_board = PlayedBoard(tmp_path / "board0"), PlayedBoard(tmp_path / "board1")
    first = GatewayProcess(tmp_path, gateway_args(broker, [first_board], tmp_path / "spool1"), "first").start()
    try:
        wait_for(lambda: subscriber.of("NBIRTH"), 15, "the first gateway's NBIRTH")
        second = run_hostgen("gateway", *gateway_args(broker, [second_board], tmp_path / "spool2"), timeout=60)
        assert_user_error(second, "edge node 'gw1'", "already served by another gateway")
        same_spool = run_hostgen("gateway", *gateway_args(broker, [second_board], tmp_path / "spool1", edge="gw9"), timeout=60)
        assert_user_error(same_spool, "spool1 is in use by another gateway", "--spool")
        other = GatewayProcess(tmp_path, gateway_args(broker, [second_board], tmp_path / "spool3", edge="gw2"), "other").start()
        first_board.boot()
        second_board.boot()
        wait_for(lambda: subscriber.board_packets("board0") == [("BOOT", 0)], 10, "the first gateway still serving")
        wait_for(lambda: [m.topic for m in subscriber.of("DBIRTH", "board1")] == ["spBv1.0/line1/DBIRTH/gw2/board1"], 15,
                 "a second edge node id on the same broker")
        other.stop()
    finally:
        first.stop()


def test_unwritable_spool_directory(tmp_path, broker):
    board = PlayedBoard(tmp_path / "board0")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_hostgen("gateway", *gateway_args(broker, [board], blocker / "spool"))
    assert_user_error(result, f"spool directory {blocker / 'spool'} is not usable", "--spool")


def test_malformed_and_unauthenticated_commands_are_rejected_counted_and_published(tmp_path, broker, subscriber):
    boards = [PlayedBoard(tmp_path / "board0"), PlayedBoard(tmp_path / "board1")]
    gateway = GatewayProcess(tmp_path, gateway_args(broker, boards, tmp_path / "spool", extra=["--metrics-port", "0"])).start()
    try:
        for board in boards:
            board.boot()
        try:
            wait_for(lambda: len(subscriber.of("DBIRTH")) == 2, 15, "both DBIRTHs")
        except AssertionError:
            raise AssertionError([(m.topic, m.payload["metrics"].get("packet/type")) for m in subscriber.messages]) from None
        plant = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plant")
        plant.username_pw_set(PLANT, PLANT_PASSWORD)
        plant.connect("127.0.0.1", broker.port)
        plant.loop_start()
        topic = "spBv1.0/line1/DCMD/gw1/"
        plant.publish(topic + "board0", b"\xff\x00 not protobuf", qos=1)
        plant.publish(topic + "board0", build_payload(None, 0, [Metric("command/reboot", BOOLEAN, True)]), qos=1)
        plant.publish(topic + "board0", build_payload(None, 0, [Metric("command/set_threshold/rms.fault", INT64, 120)]), qos=1)
        plant.publish(topic + "nosuchboard", build_payload(None, 0, [Metric("command/status", BOOLEAN, True)]), qos=1)
        wait_for(lambda: len([m for m in subscriber.messages if m.payload.get("metrics", {}).get("command/result") == "REJECTED"]) == 4,
                 10, "four published rejections")
        reasons = [m.payload["metrics"]["command/reason"] for m in subscriber.messages
                   if m.payload.get("metrics", {}).get("command/result") == "REJECTED"]
        assert "malformed DCMD payload" in reasons[0] and "unknown command metric 'command/reboot'" in reasons[1]
        assert "no key for board board0" in reasons[2] and "unknown board 'nosuchboard'" in reasons[3]
        boards[1].heartbeat()
        wait_for(lambda: subscriber.board_packets("board1") == boards[1].sent, 10, "the other board, still served")
        assert gateway.process.poll() is None
        plant.loop_stop()
    finally:
        gateway.stop()
    assert boards[0].read_back() == b"", "nothing reached the board"


def test_a_dcmd_from_a_user_without_the_right_never_reaches_the_gateway(tmp_path, broker, subscriber):
    """The broker's ACL (sparkplug_acl): only a host user may publish DCMD; a reader, or the gateway's own user
    (what a board-side machine would hold), may not. Each publishes in turn, the plant last: the broker handles
    them in that order, so the plant's DCMD reaching the gateway means the others would have, had they passed."""
    board = PlayedBoard(tmp_path / "board0")
    gateway = GatewayProcess(tmp_path, gateway_args(broker, [board], tmp_path / "spool")).start()
    try:
        board.boot()
        wait_for(lambda: subscriber.of("DBIRTH"), 15, "the DBIRTH")
        for user, password in ((READER, READER_PASSWORD), (USER, PASSWORD), (PLANT, PLANT_PASSWORD)):
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dcmd-{user}")
            client.username_pw_set(user, password)
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            payload = build_payload(None, 0, [Metric("command/status", BOOLEAN, True)])
            client.publish(f"spBv1.0/line1/DCMD/gw1/from-{user}", payload, qos=1).wait_for_publish(5)
            client.loop_stop()
            client.disconnect()
        wait_for(lambda: f"DCMD for unknown board 'from-{PLANT}'" in gateway.text(), 10, "the plant's DCMD at the gateway")
    finally:
        gateway.stop()
    assert f"from-{READER}" not in gateway.text() and f"from-{USER}" not in gateway.text(), gateway.text()
    assert [m.device for m in subscriber.of("DCMD")] == [f"from-{PLANT}"], "the broker passed on the plant's DCMD only"
