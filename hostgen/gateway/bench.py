"""`hostgen gateway-bench`: N boards' packet streams through one gateway process to a subscriber.

The boards are ptys fed with the project's encoder at the packet rate of a fault storm
(every window flagged, an alert raised and cleared every second, heartbeats: derived from
the app config), times each --rate multiplier. Reported per phase: packets/s delivered,
latency from the board's bytes leaving to the subscriber's callback (p50/p99), the gateway's
CPU share and peak RSS. Then broker outages (stopped for --outage-s, --outages times, by
SIGKILL or SIGTERM) and gateway SIGKILLs (--kills times, restarted at once), with packets lost
and duplicated at the subscriber, and the gateway's own ledger (received, acknowledged by the
broker, still spooled): a packet the subscriber never got but the broker acknowledged was lost
by the broker (a SIGKILLed mosquitto loses what it held in memory for a slow subscriber since
its last save, unless the gateway's redelivery window, --redeliver-s, covers it).
("acked/s": PUBACKs the gateway got per second while the boards sent; "delivered/s": packets
the subscriber had per second, drain included.) Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
import sys
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from hostgen.board.packets import FrameRing, decode_frame, encode
from hostgen.config.app import load_app
from hostgen.gateway.broker import LocalBroker, sparkplug_acl
from hostgen.gateway.sparkplug import parse_topic
from hostgen.gateway.sparkplug_b_pb2 import Payload

SEQ_MASK = 0x3FFFFFFF
RESEND_BYTES = load_app()["link"]["resend_bytes"]  # a board's transmit ring, as the firmware has it by default


class PtyBoard:
    """A board's gateway link: packets written to a pty behind a symlink, as a board's UART would deliver them.

    The board side stays open here (as a virtual board keeps it), so bytes wait in the kernel
    while the gateway is down; unplug() ends the pty, replug() makes a new one behind the link.
    Like the firmware, it keeps its newest frames (a FrameRing of the firmware's default size) and
    answers the gateway's RESENDs, read before each send; what else the gateway writes is kept in
    `received`.
    """

    def __init__(self, path: Path, node: int = 1, ring_bytes: int = RESEND_BYTES):
        self.path = path
        self.node = node
        self.seq = 0
        self.ring = FrameRing(ring_bytes)
        self.incoming = bytearray()
        self.received = bytearray()  # what the gateway wrote but RESENDs
        self._open()

    def _open(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.slave))

    def send(self, kind: str, garbled: bool = False, **values) -> int:
        """Send a packet; `garbled`: noise on the line flips a byte of it (the ring keeps it intact)."""
        self.serve()
        seq = self.seq
        frame = encode(kind, self.node, seq, seq * 10 & SEQ_MASK, **values)
        self.ring.add(seq, frame)
        os.write(self.master, frame[:5] + bytes([frame[5] % 255 + 1]) + frame[6:] if garbled else frame)
        self.seq = (seq + 1) & SEQ_MASK
        return seq

    def serve(self) -> None:
        """Answer the RESENDs the gateway has written (PACKETS.md), as the firmware does."""
        try:
            while select.select([self.master], [], [], 0)[0]:
                data = os.read(self.master, 4096)
                if not data:
                    break
                self.incoming += data
        except (OSError, ValueError):  # no one has the link open, or it is unplugged: what came is served
            pass
        *frames, rest = bytes(self.incoming).split(b"\x00")
        self.incoming = bytearray(rest)
        for frame in filter(None, frames):
            packet = decode_frame(frame)
            if packet is None or packet.kind != "RESEND":
                self.received += frame + b"\x00"
            elif packet.node == self.node:
                wanted = packet.fields["first_seq"]
                first, frames_again = self.ring.resend(wanted, self.seq)
                os.write(self.master, b"\x00" + encode("RESENDING", self.node, 0, 0, wanted=wanted, first_seq=first) + frames_again)

    def restart(self) -> None:
        """The board starts again: its sequence from 0, its ring empty."""
        self.seq = 0
        self.ring.clear()

    def unplug(self) -> None:
        self.close()
        self.path.unlink()

    def replug(self) -> None:
        self._open()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def storm_rate(app: dict) -> float:
    """Packets per second one board sends in a fault storm."""
    sampling = app["sampling"]
    windows = sampling["rate_hz"] / sampling["stride_samples"] * sampling["channels"]
    return windows + 2.0 + 1000 / app["firmware"]["heartbeat_ms"]


@dataclass
class Delivery:
    """The subscriber's record: first arrival time of each (board, seq), repeats counted."""

    first: dict = field(default_factory=dict)
    repeats: int = 0
    flagged_repeats: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client, userdata, message):
        arrived = time.time()
        parts = parse_topic(message.topic)
        if parts is None or parts[1] not in ("DDATA", "DBIRTH"):
            return
        payload = Payload()
        payload.ParseFromString(message.payload)
        metrics = {m.name: m for m in payload.metrics if m.name.startswith("packet/")}  # only what identifies the packet
        if "packet/seq" not in metrics or metrics["packet/type"].is_null:
            return
        seq = metrics["packet/seq"].int_value
        key = (parts[3], seq)
        with self.lock:
            if key in self.first:
                self.repeats += 1
                self.flagged_repeats += "packet/resent" in metrics or bool(message.dup)
            else:
                self.first[key] = arrived


def _subscribe(port: int, password: str, requests) -> None:
    """The plant side, in a process of its own (so decoding does not compete with the boards for one GIL)."""
    delivery = Delivery()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-plant", clean_session=False)
    client.username_pw_set("plant", password)
    client.reconnect_delay_set(0.2, 0.5)
    client.on_connect = lambda c, *a: c.subscribe("spBv1.0/#", qos=1)
    client.on_message = delivery.on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    while True:
        request = requests.recv()
        with delivery.lock:
            if request == "count":
                requests.send(len(delivery.first))
            elif request == "report":
                requests.send((dict(delivery.first), delivery.repeats, delivery.flagged_repeats))
            else:
                break
    client.loop_stop()


class Plant:
    """The subscriber process, asked for counts and reports over a pipe."""

    def __init__(self, port: int, password: str):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_subscribe, args=(port, password, child), daemon=True)
        self.process.start()

    def count(self) -> int:
        self.pipe.send("count")
        return self.pipe.recv()

    def report(self) -> tuple[dict, int, int]:
        self.pipe.send("report")
        return self.pipe.recv()

    def close(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


class Storm(threading.Thread):
    """Every board sending at `rate` packets/s: fault windows, alerts, heartbeats in turn; send times kept."""

    def __init__(self, boards: list[PtyBoard], rate: float):
        super().__init__(daemon=True)
        self.boards = boards
        self.rate = rate
        self.sent: dict = {}
        self.running = threading.Event()
        self.running.set()
        self.turn = 0

    def run(self) -> None:
        started = time.monotonic()
        done = 0
        while self.running.is_set():
            due = int((time.monotonic() - started) * self.rate) - done
            for _ in range(max(0, due)):
                for board in self.boards:
                    now = time.time()
                    if self.turn % 10 == 9:
                        seq = board.send("ALERT", channel=0, rule=0, raised=self.turn % 20 == 9, value=9000, limit=4000,
                                         sample=self.turn * 128 & SEQ_MASK)
                    elif self.turn % 10 == 4:
                        seq = board.send("HEARTBEAT", uptime_ms=self.turn, heap_free=9000, config_hash=77)
                    else:
                        seq = board.send("WINDOW", channel=0, decision=2, tier=0, rule=1, score_q8=700,
                                         start_sample=self.turn * 128 & SEQ_MASK, rms=900, peak=9000)
                    self.sent[(board.path.name, seq)] = now
                self.turn += 1
                done += 1
            time.sleep(0.005)

    def stop(self) -> None:
        self.running.clear()
        self.join(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GatewayUnderTest:
    def __init__(self, args: list[str], log_path: Path):
        self.args = args
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "hostgen", "gateway", *self.args],
                                        stdout=subprocess.DEVNULL, stderr=self.log_path.open("a"))

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _wait_delivered(plant: Plant, expected: int, timeout: float, stalled_s: float = 15.0) -> None:
    """Until the subscriber has `expected` packets, or `timeout`, or nothing new came for `stalled_s` (some are lost)."""
    deadline = time.monotonic() + timeout
    last, progress = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = plant.count()
        if count >= expected:
            return
        if count != last:
            last, progress = count, time.monotonic()
        elif time.monotonic() - progress > stalled_s:
            return
        time.sleep(0.2)


def run_bench(boards: int, rates: list[float], seconds: float, outages: int, outage_s: float, kills: int,
              app_path: str | None, log, outage_signal: str = "kill", max_inflight: int = 200) -> dict:
    base = storm_rate(load_app(app_path))
    results: dict = {"boards": boards, "storm_packets_per_s_per_board": round(base, 1), "max_inflight": max_inflight,
                     "phases": []}
    with tempfile.TemporaryDirectory(prefix="faultline-gateway-bench-") as name:
        work = Path(name)
        passwords = {"gateway": secrets.token_hex(8), "plant": secrets.token_hex(8)}
        broker = LocalBroker(work / "broker", passwords, sparkplug_acl({"gateway": ("bench", "bench-gw")}, hosts=("plant",)))
        broker.start()
        links = [PtyBoard(work / f"board{i:02d}", i + 1) for i in range(boards)]
        args = ["--broker", f"mqtt://gateway:{passwords['gateway']}@127.0.0.1:{broker.port}", "--group", "bench",
                "--edge-node", "bench-gw", "--spool", str(work / "spool"), "--max-inflight", str(max_inflight)]
        for link in links:
            args += ["--port", str(link.path)]
        gateway = GatewayUnderTest(args, work / "gateway.log")
        plant = Plant(broker.port, passwords["plant"])
        gateway.start()
        time.sleep(3.0)  # the gateway's start and its edge node probe; the plant's process
        sent_total = 0
        try:
            for multiplier in rates:
                rate = base * multiplier
                log(f"{boards} boards at {rate:.1f} packets/s each ({multiplier:g}x the storm rate) for {seconds:g} s")
                others = {"broker": broker.process.pid, "plant": plant.process.pid, "boards": os.getpid()}
                others_before = {name: cpu_seconds(pid) for name, pid in others.items()}
                cpu_before, wall_before = gateway.cpu_seconds(), time.monotonic()
                acknowledged_before = _ledger(work / "spool")["acknowledged"]
                storm = Storm(links, rate)
                storm.start()
                time.sleep(seconds)
                storm.stop()
                acknowledged = _ledger(work / "spool")["acknowledged"] - acknowledged_before
                sent_total += len(storm.sent)
                _wait_delivered(plant, sent_total, 120)
                wall = time.monotonic() - wall_before
                cpu = gateway.cpu_seconds() - cpu_before
                others_cpu = {name: cpu_seconds(pid) - others_before[name] for name, pid in others.items()}
                first, _, _ = plant.report()
                latencies = [(first[k] - t) * 1000 for k, t in storm.sent.items() if k in first]
                results["phases"].append({
                    "rate_multiplier": multiplier, "offered_packets_per_s": round(rate * boards),
                    "delivered_packets_per_s": round(len(latencies) / wall), "sent": len(storm.sent),
                    "broker_acknowledged_per_s_during_storm": round(acknowledged / seconds),
                    "lost": len(storm.sent) - len(latencies),
                    "latency_ms_p50": round(_percentile(latencies, 0.50), 1),
                    "latency_ms_p99": round(_percentile(latencies, 0.99), 1),
                    "gateway_cpu_percent": round(100 * cpu / wall, 1),
                    "gateway_cpu_us_per_packet": round(1e6 * cpu / max(1, len(storm.sent))),
                    "gateway_peak_rss_mib": round(gateway.peak_rss_mib(), 1),
                    # the rest of the machine's work in this run: mosquitto, the subscriber, the boards' writer (this process)
                    **{f"{name}_cpu_percent": round(100 * seconds / wall, 1) for name, seconds in others_cpu.items()}})
            results["outages"] = _faults(links, base, plant, "broker", outages, outage_s,
                                         lambda: broker.stop(kill=outage_signal == "kill"), broker.start, log)
            if results["outages"]:
                results["outages"]["signal"] = f"SIG{outage_signal.upper()}"
            results["gateway_kills"] = _faults(links, base, plant, "gateway", kills, 1.0, gateway.kill, gateway.start, log)
            deadline = time.monotonic() + 15  # the last PUBACKs reach the spool a moment after the subscriber has all
            while _ledger(work / "spool")["spooled"] and time.monotonic() < deadline:
                time.sleep(0.2)
            results["gateway_ledger"] = _ledger(work / "spool")
        finally:
            gateway.stop()
            plant.close()
            broker.stop()
            for link in links:
                link.close()
    return results


def _faults(links, rate, plant: Plant, what: str, count: int, down_s: float, stop, start, log) -> dict:
    if count == 0:
        return {}
    first, repeats_before, flagged_before = plant.report()
    storm = Storm(links, rate)
    storm.start()
    for index in range(count):
        time.sleep(3.0)
        log(f"{what} down ({index + 1} of {count}) for {down_s:g} s")
        stop()
        time.sleep(down_s)
        start()
    time.sleep(3.0)
    storm.stop()
    _wait_delivered(plant, len(first) + len(storm.sent), 180)
    first, repeats, flagged = plant.report()
    lost = sum(1 for key in storm.sent if key not in first)
    return {"times": count, "down_s": down_s, "sent": len(storm.sent), "lost": lost, "duplicated": repeats - repeats_before,
            "duplicated_unflagged": (repeats - repeats_before) - (flagged - flagged_before)}


def _ledger(spool: Path) -> dict:
    """The gateway's own account at the end: received, acknowledged by the broker, still spooled."""
    from hostgen.gateway.spool import read_status

    _, boards, depth = read_status(spool)
    return {"received": sum(b["packets_in"] for b in boards), "acknowledged": sum(b["published"] for b in boards),
            "spooled": sum(depth.values()), "dropped": sum(b["dropped"] for b in boards),
            "missing": sum(b["missing"] for b in boards)}


def format_bench(results: dict) -> str:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines = [f"{results['boards']} boards; a fault storm is {results['storm_packets_per_s_per_board']} packets/s per board; "
             f"{os.cpu_count()} CPUs, load average now {load}"]
    lines.append(f"{'rate':>5} {'offered/s':>10} {'acked/s':>8} {'delivered/s':>11} {'lost':>5} {'p50 ms':>8} {'p99 ms':>8} "
                 f"{'CPU %':>6} {'CPU us/pkt':>10} {'RSS MiB':>8}   {'CPU % of broker/plant/boards':>28}")
    for p in results["phases"]:
        lines.append(f"{p['rate_multiplier']:>4g}x {p['offered_packets_per_s']:>10} {p['broker_acknowledged_per_s_during_storm']:>8} "
                     f"{p['delivered_packets_per_s']:>11} {p['lost']:>5} "
                     f"{p['latency_ms_p50']:>8} {p['latency_ms_p99']:>8} {p['gateway_cpu_percent']:>6} {p['gateway_cpu_us_per_packet']:>10} "
                     f"{p['gateway_peak_rss_mib']:>8}   "
                     f"{p['broker_cpu_percent']:>10}/{p['plant_cpu_percent']}/{p['boards_cpu_percent']}")
    for key, what in (("outages", f"broker stopped ({results.get('outages', {}).get('signal')})"),
                      ("gateway_kills", "gateway SIGKILLed")):
        f = results.get(key)
        if f:
            lines.append(f"{what} {f['times']} x {f['down_s']:g} s: {f['sent']} packets sent, {f['lost']} lost, "
                         f"{f['duplicated']} delivered twice ({f['duplicated_unflagged']} of them without packet/resent or MQTT DUP)")
    ledger = results.get("gateway_ledger")
    if ledger:
        lines.append(f"gateway ledger: {ledger['received']} received, {ledger['acknowledged']} acknowledged by the broker, "
                     f"{ledger['spooled']} still spooled, {ledger['dropped']} dropped by the spool bound, "
                     f"{ledger['missing']} reported missing (sequence gaps)")
    return "\n".join(lines)


def bench_command(args, log) -> str:
    results = run_bench(args.boards, [float(r) for r in args.rates.split(",")], args.seconds, args.outages, args.outage_s,
                        args.kills, args.app, log, args.outage_signal, args.max_inflight)
    return json.dumps(results, indent=2) if args.json else format_bench(results)
