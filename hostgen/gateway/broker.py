"""A local Debian mosquitto for the demo, the benchmark and the tests: its own config on a free
loopback port, a password file made with mosquitto_passwd, no anonymous clients, an ACL file
(`sparkplug_acl`: who may publish and read which Sparkplug topics), persistence on."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from hostgen.errors import HostgenError


def mosquitto_executable() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")  # Debian: sbin


def sparkplug_acl(gateways: dict[str, tuple[str, str]], hosts: tuple[str, ...] = (), readers: tuple[str, ...] = ()) -> str:
    """A mosquitto acl_file: what a user is not granted here, it may neither publish nor read.

    gateways: user -> (group, edge node id) it serves ('+' for any): it publishes that edge node's
    births, deaths and data (and its NCMD probe), reads its NCMD, DCMD, NBIRTH and any host's STATE.
    hosts: users that read everything and may command (NCMD, DCMD); each publishes its own STATE
    (the user name is its host id). readers: read everything, publish nothing.
    """
    lines = []
    for user, (group, edge) in gateways.items():
        node = f"spBv1.0/{group}/{{}}/{edge}"
        lines += [f"user {user}"] + [f"topic write {node.format(kind)}" for kind in ("NDEATH", "NDATA")]
        lines += [f"topic readwrite {node.format(kind)}" for kind in ("NBIRTH", "NCMD")]
        lines += [f"topic write {node.format(kind)}/+" for kind in ("DBIRTH", "DDATA", "DDEATH")]
        lines += [f"topic read {node.format('DCMD')}/+", "topic read spBv1.0/STATE/+", ""]
    for user in hosts:
        lines += [f"user {user}", "topic read spBv1.0/#", "topic write spBv1.0/+/NCMD/+", "topic write spBv1.0/+/DCMD/+/+",
                  f"topic write spBv1.0/STATE/{user}", ""]
    for user in readers:
        lines += [f"user {user}", "topic read spBv1.0/#", ""]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    def __init__(self, directory: Path, users: dict[str, str], acl: str, port: int | None = None):
        """users: name -> password; acl: the acl_file's text (sparkplug_acl)."""
        executable = mosquitto_executable()
        if executable is None or shutil.which("mosquitto_passwd") is None:
            raise HostgenError("mosquitto not found; run `make setup` (or apt-get install mosquitto mosquitto-clients)")
        self.executable = executable
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        passwords = directory / "passwords"
        for index, (user, password) in enumerate(users.items()):
            subprocess.run(["mosquitto_passwd", *(["-c"] if index == 0 else []), "-b", str(passwords), user, password],
                           check=True, capture_output=True)
        (directory / "acl").write_text(acl)
        (directory / "data").mkdir(exist_ok=True)
        self.log = directory / "mosquitto.log"
        self.config = directory / "mosquitto.conf"
        import os

        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            f"acl_file {directory / 'acl'}\n"
            "persistence true\n"
            f"persistence_location {directory / 'data'}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            f"log_dest file {self.log}\n"
            + ("user root\n" if os.geteuid() == 0 else "")  # else mosquitto drops to a user that cannot read the files
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen([self.executable, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log.read_text()[-300:] if self.log.is_file() else ""
                raise HostgenError(f"mosquitto exited at once: {self.process.stderr.read().decode().strip()} {log}".strip())
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise HostgenError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout:g} s")

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(10)
        self.process = None
