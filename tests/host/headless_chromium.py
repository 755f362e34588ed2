"""Load pages in Debian's headless Chromium over the DevTools protocol and report what a reader would see."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

# No network on the test machines: without these, Chromium waits on connections it tries by itself.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync")
TIMEOUT_S = 30
PAGE_FACTS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent.trim()),
})"""


class Page:
    """The browser's one page: `load(path)` navigates it and returns errors, requests, images and headings."""

    def __init__(self, socket):
        self.socket = socket
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=TIMEOUT_S))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def load(self, path: Path) -> dict:
        self.events = []
        self.call("Page.navigate", url=path.resolve().as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(json.loads(self.socket.recv(timeout=TIMEOUT_S)))
        facts = json.loads(self.call("Runtime.evaluate", expression=PAGE_FACTS, returnByValue=True)["result"]["value"])
        events = {}
        for event in self.events:
            events.setdefault(event.get("method"), []).append(event["params"])
        errors = events.get("Runtime.exceptionThrown", [])
        errors += [e for e in events.get("Runtime.consoleAPICalled", []) if e["type"] == "error"]
        errors += [e["entry"] for e in events.get("Log.entryAdded", []) if e["entry"]["level"] == "error"]
        requests = [e["request"]["url"] for e in events.get("Network.requestWillBeSent", [])]
        return {"errors": errors, "requests": requests, **facts}


def _devtools_port(profile: Path, process: subprocess.Popen) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


@contextlib.contextmanager
def headless_chromium():
    """A fresh headless Chromium (own profile, no network use) and its page; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        process = subprocess.Popen(
            [shutil.which("chromium"), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _devtools_port(Path(profile), process)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT_S) as response:
                target = next(t for t in json.load(response) if t["type"] == "page")
            with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=TIMEOUT_S) as socket:
                yield Page(socket)
        finally:
            process.terminate()
            try:
                process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
