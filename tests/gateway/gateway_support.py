"""The real parts the gateway tests run against: a Debian mosquitto with authentication,
a paho subscriber that decodes Sparkplug B, boards played onto ptys with the project's
encoder, and the gateway as a real process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from hostgen.gateway.bench import RESEND_BYTES, PtyBoard
from hostgen.gateway.broker import LocalBroker, free_port, mosquitto_executable, sparkplug_acl  # noqa: F401 (free_port: for tests)
from hostgen.gateway.sparkplug import decode_payload, parse_topic

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "gateway", "s3cret-for-tests"
READER, READER_PASSWORD = "reader", "reader-pass"  # reads everything, publishes nothing
PLANT, PLANT_PASSWORD = "plant", "plant-pass"  # a host: reads everything, may command (DCMD, NCMD), has a STATE


def wait_for(condition, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Broker(LocalBroker):
    """The tests' broker: the gateway's user (any group and edge node id: the tests run several), a reader for
    the subscriber, and a plant that may command."""

    def __init__(self, directory: Path):
        super().__init__(directory, {USER: PASSWORD, READER: READER_PASSWORD, PLANT: PLANT_PASSWORD},
                         sparkplug_acl({USER: ("+", "+")}, hosts=(PLANT,), readers=(READER,)))


@dataclass
class Message:
    topic: str
    kind: str
    device: str | None
    payload: dict
    mqtt_dup: bool = False  # the broker re-sent it to this subscriber (its PUBACK was cut off)


@dataclass
class Subscriber:
    """A real MQTT client on spBv1.0/#: a persistent session, so a broker restart loses nothing for it."""

    broker: Broker
    client_id: str = "test-subscriber"
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self):
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(READER, READER_PASSWORD)
        self.client.reconnect_delay_set(0.2, 0.5)
        self.client.on_connect = lambda c, u, f, rc, p: (c.subscribe("spBv1.0/#", qos=1), self.connected.set())
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", self.broker.port, 5)
        self.client.loop_start()
        assert self.connected.wait(10), "the subscriber could not connect"

    def go_offline(self) -> None:
        """Disconnect, keeping the session: the broker queues what comes meanwhile for come_back()."""
        self.client.loop_stop()
        self.client.disconnect()
        self.connected.clear()

    def come_back(self) -> None:
        self.client.connect_async("127.0.0.1", self.broker.port, 5)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        parts = parse_topic(message.topic)
        if parts is None:  # not a Sparkplug B data topic (a primary host's STATE)
            return
        group, kind, edge, device = parts
        try:
            payload = decode_payload(message.payload)
        except Exception:
            payload = {"raw": bytes(message.payload)}
        with self.lock:
            self.messages.append(Message(message.topic, kind, device, payload, bool(message.dup)))

    def of(self, kind: str, device: str | None = None) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m.kind == kind and (device is None or m.device == device)]

    def board_packets(self, device: str, with_resent: bool = False) -> list[tuple]:
        """(type, board seq[, resent flag]) of every board packet published for `device`, in arrival order."""
        with self.lock:
            out = []
            for m in self.messages:
                if m.device == device and m.kind in ("DBIRTH", "DDATA"):
                    metrics = m.payload["metrics"]
                    if metrics.get("packet/type"):
                        key = (metrics["packet/type"], metrics["packet/seq"])
                        out.append(key + (bool(metrics.get("packet/resent")), m.mqtt_dup) if with_resent else key)
            return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class PlayedBoard(PtyBoard):
    """A board's gateway link played from the project's encoder (the benchmark's PtyBoard), remembering what it sent."""

    def __init__(self, path: Path, node: int = 1, ring_bytes: int = RESEND_BYTES):
        super().__init__(path, node, ring_bytes)
        self.sent: list[tuple[str, int]] = []

    def send(self, kind: str, garbled: bool = False, **values) -> int:
        seq = super().send(kind, garbled, **values)
        self.sent.append((kind, seq))
        return seq

    def boot(self, config_hash: int = 1234) -> None:
        self.restart()
        self.send("BOOT", major=0, minor=1, patch=0, channels=1, rate_hz=1000, block=8, window=256, stride=128,
                  config_hash=config_hash, tier2=0, config_source=1)

    def heartbeat(self, config_hash: int = 1234) -> None:
        self.send("HEARTBEAT", uptime_ms=self.seq, heap_free=1000, heap_used=2000, loop_p50_us=40, loop_p99_us=90,
                  loop_max_us=200, config_hash=config_hash)

    def alert(self, value: int = 5000, garbled: bool = False) -> None:
        self.send("ALERT", garbled, channel=0, rule=0, raised=1, value=value, limit=4000, sample=self.seq * 8)

    def window(self) -> None:
        self.send("WINDOW", channel=0, decision=2, tier=0, rule=1, score_q8=300, confidence_q8=0, start_sample=self.seq * 128,
                  mean=-3, rms=900, peak=4000, crest_q8=1200, kurtosis_q8=2000, zcr=40)

    def raw(self, data: bytes) -> None:
        os.write(self.master, data)

    def lose_unread(self) -> None:
        """What the gateway has not read is gone, as a UART's bytes are with no one listening."""
        termios.tcflush(self.slave, termios.TCIFLUSH)

    def read_back(self) -> bytes:
        """What the gateway wrote back but RESENDs (commands), RESENDs answered."""
        self.serve()
        return bytes(self.received)


class GatewayProcess:
    """`hostgen gateway` as a user runs it, its stderr kept in a file."""

    def __init__(self, directory: Path, args: list[str], name: str = "gateway"):
        self.log = directory / f"{name}.log"
        self.args = args
        self.process: subprocess.Popen | None = None

    def start(self) -> "GatewayProcess":
        self.process = subprocess.Popen([sys.executable, "-m", "hostgen", "gateway", *self.args], cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=self.log.open("a"), text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def text(self) -> str:
        return self.log.read_text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def gateway_args(broker: Broker, boards: list[PlayedBoard], spool: Path, edge: str = "gw1", extra: list[str] = ()) -> list[str]:
    args = ["--broker", f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{broker.port}", "--group", "line1", "--edge-node", edge,
            "--spool", str(spool)]
    for board in boards:
        args += ["--port", str(board.path)]
    return args + list(extra)


def have_mosquitto() -> bool:
    return mosquitto_executable() is not None and shutil.which("mosquitto_passwd") is not None


class Traffic(threading.Thread):
    """Boards sending steadily (heartbeat, alert, window in turn) until stopped."""

    def __init__(self, boards: list[PlayedBoard], per_second: float):
        super().__init__(daemon=True)
        self.boards = boards
        self.period = 1 / per_second
        self.running = threading.Event()
        self.running.set()
        self.paused = threading.Event()

    def run(self) -> None:
        turn = 0
        while self.running.is_set():
            if not self.paused.is_set():
                for board in self.boards:
                    (board.heartbeat, board.alert, board.window)[turn % 3]()
                turn += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self.running.clear()
        self.join(5)


def check_delivery(subscriber: Subscriber, boards: list[PlayedBoard], timeout: float = 30, missing: dict | None = None) -> dict:
    """Every packet each board sent reached the subscriber, in order; returns lost/duplicated counts per board.

    `missing`: board -> packets the gateway reported as sequence gaps; that many may be absent.
    """
    figures = {}
    for board in boards:
        name = board.path.name
        allowed = (missing or {}).get(name, 0)
        try:
            wait_for(lambda: len(set(subscriber.board_packets(name)) & set(board.sent)) >= len(board.sent) - allowed, timeout,
                     f"the {len(board.sent)} packets of {name}", 0.2)
        except AssertionError as exc:
            absent = [p for p in board.sent if p not in set(subscriber.board_packets(name))]
            raise AssertionError(f"{exc}; absent: {absent[:10]}") from None
        flagged = subscriber.board_packets(name, with_resent=True)
        got = [f[:2] for f in flagged]
        seen, unflagged_repeats = set(), 0
        for kind, seq, resent, mqtt_dup in flagged:
            unflagged_repeats += (kind, seq) in seen and not (resent or mqtt_dup)
            seen.add((kind, seq))
        unique = list(dict.fromkeys(got))
        expected = [p for p in board.sent if p in set(got)]
        first_wrong = next((i for i, (a, b) in enumerate(zip(unique, expected)) if a != b), min(len(unique), len(expected)))
        assert unique == expected, (f"{name}: packets out of order or foreign from arrival {first_wrong}: got "
                                    f"{unique[first_wrong:first_wrong + 5]}, sent {expected[first_wrong:first_wrong + 5]}")
        assert unflagged_repeats == 0, f"{name}: a packet came twice without packet/resent or the MQTT DUP flag: {flagged}"
        figures[name] = {"sent": len(board.sent), "lost": len(set(board.sent) - set(got)),
                         "duplicated": len(got) - len(unique), "resent": sum(f[2] or f[3] for f in flagged)}
    return figures
