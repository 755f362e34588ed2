"""`make gateway-demo`: a broker, 8 virtual boards and a gateway on this machine, and a plant-side
subscriber showing the alerts live; halfway, the plant pushes a threshold down to one board."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from hostgen.board.flash import flash
from hostgen.board.keys import BOARD_KEY, host_key
from hostgen.board.vboard import VirtualBoardProcess
from hostgen.config.board import Board
from hostgen.gateway.broker import LocalBroker, sparkplug_acl
from hostgen.gateway.sparkplug import INT64, Metric, build_payload, decode_payload, parse_topic

BOARDS = 8
BOARD_STATE = ("faultline.key", "command.counter", "command.tmp", "config.json", "config.tmp")


def _scenario(index: int) -> str:
    return f"normal:{3 + index},impact,normal:3,fault:6,normal:4"


class PlantView:
    """What a plant system sees: one line per alert, fault window, birth, death and command answer."""

    def __init__(self, port: int, password: str, out):
        self.out = out
        self.counts: dict[str, int] = {}
        self.in_fault: dict[str, bool] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plant-view")
        self.client.username_pw_set("plant", password)
        self.client.on_connect = lambda c, *a: c.subscribe("spBv1.0/#", qos=1)
        self.client.on_message = self._show
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _show(self, client, userdata, message):
        _, kind, edge, device = parse_topic(message.topic) or (None, None, None, None)
        if kind in (None, "NCMD", "DCMD"):
            return
        payload = decode_payload(message.payload)
        metrics = payload["metrics"]
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
        delay = time.time() * 1000 - (payload["metric_timestamp"] or payload["timestamp"])
        where = f"{edge}/{device}" if device else edge
        packet = metrics.get("packet/type")
        if kind == "DDATA" and packet == "ALERT" and metrics.get("alert/raised"):
            line = (f"\x1b[1;31mALERT\x1b[0m {where}: {metrics['alert/rule']} on ch{metrics['alert/channel']}, "
                    f"{metrics['alert/value']} over {metrics['alert/limit']} at sample {metrics['alert/sample']}")
        elif kind == "DDATA" and packet == "WINDOW":
            faulty = metrics.get("window/decision") == "fault"
            was = self.in_fault.get(device, False)
            self.in_fault[device] = faulty
            if not faulty or was:  # a run of fault windows: its first is shown
                return
            line = (f"\x1b[31mFAULT\x1b[0m {where}: windows from sample {metrics['window/start_sample']} judged faulty by "
                    f"{metrics['window/tier']}, score {metrics['window/score']:.2f}")
        elif kind == "DDATA" and packet == "SUMMARY":
            self.in_fault[device] = False
            return
        elif kind == "DDATA" and packet in ("ACK", "NACK"):
            line = f"\x1b[1;32m{packet}\x1b[0m {where}: command {metrics['command/counter']} ({metrics['command/op']}): {metrics['command/reason']}"
        elif kind in ("NBIRTH", "DBIRTH", "DDEATH", "NDEATH"):
            line = f"{kind} {where}" + (f" (config {metrics.get('boot/config_hash')})" if kind == "DBIRTH" else "")
        else:
            return
        print(f"  plant  +{delay:6.0f} ms  {line}", file=self.out, flush=True)

    def command(self, group: str, edge: str, device: str, name: str, value: int) -> None:
        payload = build_payload(None, int(time.time() * 1000), [Metric(name, INT64, value)])
        self.client.publish(f"spBv1.0/{group}/DCMD/{edge}/{device}", payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _start_boards(board: Board, work: Path, log) -> list[VirtualBoardProcess]:
    """The first board flashed (mpremote, verified); the others start with its files and a key of their own."""
    first = VirtualBoardProcess(board.name, work / "press1", _scenario(0))
    boards = [first]
    print(flash(board, str(first.repl), 115_200, None, False, log, str(work / "keys" / "press1.key")), flush=True)
    for index in range(1, BOARDS):
        root = work / f"press{index + 1}"
        (root / "fs").mkdir(parents=True)
        for path in first.fs.iterdir():
            if path.is_dir():  # the firmware itself lives in fw-<digest>/, which the pointer file names
                shutil.copytree(path, root / "fs" / path.name)
            elif path.name not in BOARD_STATE:
                shutil.copy2(path, root / "fs" / path.name)
        (root / "fs" / BOARD_KEY).write_text(host_key(work / "keys" / f"press{index + 1}.key"))
        boards.append(VirtualBoardProcess(board.name, root, _scenario(index)))
    first.stop()  # restart the flashed one too, so all eight boot now and send their BOOT to the gateway
    boards[0] = VirtualBoardProcess(board.name, work / "press1", _scenario(0))
    return boards


def run_gateway_demo(board: Board, seconds: float, log) -> str:
    with tempfile.TemporaryDirectory(prefix="faultline-gateway-demo-") as name:
        work = Path(name)
        passwords = {"gateway": secrets.token_hex(8), "plant": secrets.token_hex(8)}
        broker = LocalBroker(work / "broker", passwords, sparkplug_acl({"gateway": ("line1", "demo-gw")}, hosts=("plant",)))
        broker.start()
        log(f"mosquitto on {broker.url} (authentication on); starting {BOARDS} virtual {board.name} boards")
        boards: list[VirtualBoardProcess] = []
        gateway = view = None
        try:
            boards = _start_boards(board, work, log)
            config = work / "gateway.toml"
            config.write_text(
                f'[gateway]\ngroup = "line1"\nedge_node = "demo-gw"\nspool = "spool"\nmetrics_port = 0\n'
                f'[broker]\nurl = "{broker.url}"\nusername = "gateway"\npassword = "{passwords["gateway"]}"\n'
                + "".join(f'[[board]]\nname = "press{i + 1}"\nport = "{b.gateway}"\nkey = "keys/press{i + 1}.key"\n'
                          for i, b in enumerate(boards)))
            view = PlantView(broker.port, passwords["plant"], sys.stdout)
            gateway = subprocess.Popen([sys.executable, "-m", "hostgen", "gateway", "--config", str(config)])
            log(f"gateway up; watching the plant side for {seconds:g} s")
            time.sleep(seconds / 2)
            log("the plant raises press3's fast-path peak limit to 30000 (an authenticated DCMD)")
            view.command("line1", "demo-gw", "press3", "command/set_threshold/fast.peak/ch0", 30000)
            time.sleep(seconds / 2)
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait(20)
            if view is not None:
                view.close()
            for vboard in boards:
                vboard.stop()
            broker.stop()
        status = subprocess.run([sys.executable, "-m", "hostgen", "gateway", "--status", "--spool", str(work / "spool")],
                                capture_output=True, text=True)
        counts = ", ".join(f"{view.counts[k]} {k}" for k in sorted(view.counts)) if view else "nothing"
        return f"the plant saw {counts}\n{status.stdout.strip()}"
