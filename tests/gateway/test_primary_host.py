"""Sparkplug 3.0 primary host: with `--primary-host`, the gateway births and publishes only while that host's
STATE (retained, {"online", "timestamp"}) says online, keeps spooling otherwise, and is born again when it is back.
The host is a real paho client on the real broker."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
from gateway_support import PLANT, PLANT_PASSWORD, GatewayProcess, PlayedBoard, check_delivery, gateway_args, wait_for

from hostgen.gateway.sparkplug import state_topic

HOST_ID = PLANT  # a host publishes STATE under its own user name (sparkplug_acl)


class Host:
    """The primary host application's STATE: its Will says offline, its birth online, both retained, QoS 1."""

    def __init__(self, broker):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="primary-host")
        self.client.username_pw_set(PLANT, PLANT_PASSWORD)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def state(self, online: bool, timestamp: int) -> None:
        payload = json.dumps({"online": online, "timestamp": timestamp})
        self.client.publish(state_topic(HOST_ID), payload, qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _kinds(subscriber) -> list[str]:
    """What the gateway published as the edge node (its NCMD probe for another gateway on its id aside)."""
    with subscriber.lock:
        return [m.kind for m in subscriber.messages if m.kind != "NCMD"]


def test_births_and_data_wait_for_the_primary_host_and_follow_its_state(tmp_path, broker, subscriber):
    board = PlayedBoard(tmp_path / "board0")
    gateway = GatewayProcess(tmp_path, gateway_args(broker, [board], tmp_path / "spool",
                                                    extra=["--primary-host", HOST_ID])).start()
    host = Host(broker)
    try:
        board.boot()
        board.heartbeat()
        wait_for(lambda: "waiting for primary host" in gateway.text(), 15, "the gateway waiting for the host")
        time.sleep(1.0)
        assert _kinds(subscriber) == [], "no birth, no data before the primary host is online"

        started = int(time.time() * 1000)
        host.state(True, started)
        wait_for(lambda: subscriber.board_packets("board0") == board.sent, 15, "the spooled packets once the host is online")
        assert _kinds(subscriber)[:2] == ["NBIRTH", "DBIRTH"]

        host.state(False, started + 1)  # the host goes away: NDEATH at once, then nothing until it is back
        wait_for(lambda: subscriber.of("NDEATH"), 10, "the NDEATH")
        board.alert()
        board.window()
        host.state(True, started - 5000)  # an older STATE than the last taken: ignored
        time.sleep(2.0)
        assert _kinds(subscriber)[-1] == "NDEATH", "nothing published while the host is offline"

        host.state(True, started + 2)
        wait_for(lambda: len(subscriber.of("NBIRTH")) == 2, 15, "a new birth when the host is back")
        figures = check_delivery(subscriber, [board])
    finally:
        host.close()
        gateway.stop()
    assert figures["board0"]["lost"] == 0
    births = [m.payload["metrics"]["bdSeq"] for m in subscriber.of("NBIRTH")]
    assert births == [0, 1] and subscriber.of("NDEATH")[0].payload["metrics"]["bdSeq"] == 0
    assert "primary host 'plant' offline" in gateway.text()
