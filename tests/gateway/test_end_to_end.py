"""The whole loop on a real virtual board (the MicroPython VM running the firmware, behind ptys):
flashed with a key, its packets through the gateway to a subscriber, and commands from the plant
back to the board, answered, applied and re-born."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from gateway_support import PLANT, PLANT_PASSWORD, GatewayProcess, gateway_args, wait_for
from helpers import run_hostgen

from hostgen.board.vboard import VirtualBoardProcess
from hostgen.gateway.sparkplug import BOOLEAN, INT64, Metric, build_payload


def test_virtual_board_to_subscriber_and_commands_back(tmp_path, broker, subscriber):
    key = tmp_path / "keys" / "press1.key"
    with VirtualBoardProcess("stm32f4", tmp_path / "vboard", "normal:3,impact,normal:6") as vboard:
        flashed = run_hostgen("flash", "--board", "stm32f4", "--port", vboard.repl, "--key", key)
        assert flashed.returncode == 0, flashed.stderr
        assert key.is_file() and (vboard.fs / "faultline.key").read_text().strip() == key.read_text().strip()

        class Link:  # the vboard's gateway pty, as the gateway sees it
            path = vboard.gateway

        gateway = GatewayProcess(tmp_path, gateway_args(broker, [Link], tmp_path / "spool", extra=["--key", str(key)])).start()
        device = vboard.gateway.name
        try:
            wait_for(lambda: any(k == "ALERT" for k, _ in subscriber.board_packets(device)), 60, "the impact's ALERT")
            births = subscriber.of("DBIRTH", device)
            assert births[0].payload["metrics"]["packet/type"] == "BOOT" and births[0].payload["metrics"]["boot/rate_hz"] == 1000
            plant = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plant")
            plant.username_pw_set(PLANT, PLANT_PASSWORD)
            plant.connect("127.0.0.1", broker.port)
            plant.loop_start()
            topic = f"spBv1.0/line1/DCMD/gw1/{device}"
            plant.publish(topic, build_payload(None, 0, [Metric("command/set_threshold/fast.peak/ch0", INT64, 31000)]), qos=1)
            plant.publish(topic, build_payload(None, 0, [Metric("command/set_threshold/fast.peak/ch0", INT64, 0)]), qos=1)
            plant.publish(topic, build_payload(None, 0, [Metric("command/status", BOOLEAN, True)]), qos=1)

            def answers():
                return [(m.payload["metrics"]["command/result"], m.payload["metrics"]["command/reason"])
                        for m in subscriber.of("DDATA", device) if m.payload["metrics"].get("packet/type") in ("ACK", "NACK")]

            wait_for(lambda: len(answers()) == 3, 30, "three answers from the board")
            assert answers() == [("ACK", "ok"), ("NACK", "value out of range"), ("ACK", "ok")]
            wait_for(lambda: len(subscriber.of("DBIRTH", device)) >= 2, 30, "a new DBIRTH for the new config hash")
            plant.loop_stop()
            assert '"fast.peak"' not in (vboard.fs / "config.json").read_text()  # thresholds are stored by value
            assert 31000 in __import__("json").loads((vboard.fs / "config.json").read_text())["peak_limits"]
            seqs = [seq for _, seq in subscriber.board_packets(device)]
            assert seqs == list(range(len(seqs))), "every packet the board sent, once, in order"
        finally:
            gateway.stop()
