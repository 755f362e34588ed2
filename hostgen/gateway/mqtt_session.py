"""One MQTT connection (paho-mqtt 2.x), driven from the gateway's own loop; its events queued for it.

A fresh client per connection: its Will is that session's NDEATH (with its bdSeq), and
nothing paho kept from an earlier connection is sent again behind the spool's back; the
spool alone decides what is re-sent after a reconnect.

Only the TCP connect runs in a thread of its own (it may block for paho's connect timeout);
after it, the gateway's thread does all the network work through paho's external-loop calls
(`pump`: loop_read, loop_write, loop_misc). One thread: a publish is written to the socket at
once, with no hand-over to paho's network thread (a wake-up byte and a lock per message,
and the GIL passed back and forth: measured at 10x load, that cost more than the protobuf).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import deque
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
        """wake: called from the connecting thread when the socket is open (or cannot be), to cut the loop's wait short."""
        self.events: deque[Event] = deque()  # appended by paho's callbacks and the connecting thread
        self.wake = wake
        self.host, self.port = host, port
        self.connected_ms = 0
        self.socket_open = False  # set by the connecting thread; from then on only the gateway's thread uses the client
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                  clean_session=True)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.will_set(will_topic, will_payload, qos=1, retain=False)
        self.client.max_inflight_messages_set(max_inflight + 16)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.keepalive = keepalive

    def start(self) -> None:
        threading.Thread(target=self._connect, daemon=True).start()

    def _connect(self) -> None:
        try:
            self.client.connect(self.host, self.port, self.keepalive)  # the TCP connection, and CONNECT sent
        except (OSError, ValueError) as exc:
            self.events.append(Event("unreachable", str(exc) or type(exc).__name__))
        else:
            self.socket_open = True
        self.wake()

    def stop(self, clean: bool = False) -> None:
        """clean: an MQTT DISCONNECT first (the broker then drops the Will); else the socket is just closed."""
        if self.socket_open and clean:
            self.client.disconnect()
        self.socket_open = False
        try:
            self.client.socket() and self.client.socket().close()
        except OSError:
            pass

    # -- the gateway's thread -----------------------------------------------------------------

    def pump(self) -> None:
        """Read what has come (CONNACK, PUBACKs, messages), write what is queued, keep alive; events go to the queue."""
        if not self.socket_open:
            return
        for step in (self.client.loop_read, self.client.loop_write, self.client.loop_misc):
            if step() != mqtt.MQTT_ERR_SUCCESS or not self.socket_open:
                return

    def next_event(self, wait: float = 0.0) -> Event | None:
        """The next event, pumping the connection when none is queued; waiting up to `wait` s for the socket."""
        if not self.events:
            self.pump()
            if not self.events and wait:
                sock = self.client.socket() if self.socket_open else None
                if sock is None:
                    time.sleep(wait)
                else:
                    select.select([sock], [], [], wait)
                self.pump()
        return self.events.popleft() if self.events else None

    def publish(self, topic: str, payload: bytes) -> int | None:
        """The message id, or None if the client has no connection now."""
        if not self.socket_open:
            return None
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    @contextlib.contextmanager
    def batch(self):
        """Publishes inside go out coalesced (Linux TCP_CORK): one segment for many, not one each.

        paho writes each message with its own send(); on loopback every segment costs the sender
        the broker side's TCP work too. Uncorking at the end sends at once: no delay beyond the batch.
        """
        sock = self.client.socket() if self.socket_open else None
        cork = getattr(socket, "TCP_CORK", None)
        if sock is None or cork is None:
            yield
            return
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):  # the connection went meanwhile
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)

    def subscribe(self, topics: list[str]) -> None:
        self.client.subscribe([(t, 1) for t in topics])

    # -- paho's callbacks (run inside pump) ------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.events.append(Event("refused", str(reason_code)))
        else:
            self.connected_ms = int(time.time() * 1000)
            self.events.append(Event("connected"))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.socket_open = False
        self.events.append(Event("disconnected", str(reason_code)))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.events.append(Event("puback", mid))

    def _on_message(self, client, userdata, message):
        self.events.append(Event("message", message.topic, bytes(message.payload)))
