"""One MQTT connection (paho-mqtt 2.x), its events handed to the gateway's loop through a queue.

A fresh client per connection: its Will is that session's NDEATH (with its bdSeq), and
nothing paho kept from an earlier connection is sent again behind the spool's back; the
spool alone decides what is re-sent after a reconnect.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

BAD_CREDENTIALS = ("Bad user name or password", "Not authorized")


@dataclass
class Event:
    kind: str  # connected, refused, unreachable, disconnected, puback, message
    detail: object = None
    payload: bytes = b""


class MqttSession:
    def __init__(self, client_id: str, host: str, port: int, username: str | None, password: str | None,
                 will_topic: str, will_payload: bytes, keepalive: int, max_inflight: int, wake=lambda: None):
        self.events: queue.Queue[Event] = queue.Queue()
        self.wake = wake
        self.host, self.port = host, port
        self.connected_ms = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                  clean_session=True)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.will_set(will_topic, will_payload, qos=1, retain=False)
        self.client.max_inflight_messages_set(max_inflight + 16)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(3600, 3600)  # the gateway reconnects with a new session, not paho
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.keepalive = keepalive

    def start(self) -> None:
        try:
            self.client.connect_async(self.host, self.port, self.keepalive)
        except (OSError, ValueError) as exc:
            self.events.put(Event("unreachable", str(exc)))
            return
        self.client.loop_start()

    def stop(self, clean: bool = False) -> None:
        if clean:
            self.client.disconnect()
        self.client.loop_stop()
        try:
            self.client.socket() and self.client.socket().close()
        except OSError:
            pass

    # -- paho's thread -----------------------------------------------------------------------

    def _put(self, event: Event) -> None:
        self.events.put(event)
        # woken once per batch, not per PUBACK: with more waiting, the loop is still draining and takes this one too
        if self.events.qsize() == 1:
            self.wake()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._put(Event("refused", str(reason_code)))
        else:
            self.connected_ms = int(time.time() * 1000)
            self._put(Event("connected"))

    def _on_connect_fail(self, client, userdata):
        self._put(Event("unreachable", "connection failed"))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._put(Event("disconnected", str(reason_code)))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self._put(Event("puback", mid))

    def _on_message(self, client, userdata, message):
        self._put(Event("message", message.topic, bytes(message.payload)))

    # -- the gateway's thread -----------------------------------------------------------------

    def publish(self, topic: str, payload: bytes) -> int | None:
        """The message id, or None if the client has no connection now."""
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def subscribe(self, topics: list[str]) -> None:
        self.client.subscribe([(t, 1) for t in topics])
