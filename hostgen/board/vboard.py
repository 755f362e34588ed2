"""A virtual board: the MicroPython unix port behind a pseudo-terminal, as a board's USB REPL.

The VM runs the REPL protocol (mpy_vboard_repl.py); this relay joins it to a pty so that
mpremote, pyserial or a terminal cannot tell it from a board. Around it, the parts a real
board has: a filesystem (a directory), a heap the size of the board's, a sensor fed from a
scenario, and a gateway UART on a second pty, both ways (packets out, commands in). Ctrl-C becomes SIGINT to the VM, a soft
reset starts a fresh VM, and output is cooked (\\n -> \\r\\n) as a board's is.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hostgen.board.image import compile_mpy
from hostgen.board.unix_port import UNIX_PORT_ARCH, unix_heap_bytes
from hostgen.config.board import Board
from hostgen.data import synthetic as dataset
from hostgen.errors import HostgenError
from hostgen.paths import BUILD_ROOT, MPY_DIR
from hostgen.util.tools import micropython_executable

REPL_SCRIPT = MPY_DIR / "vboard_repl.py"
SOFT_RESET, SOFT_RESET_RAW = 80, 81
REPL_HEAP = 16 * 1024  # the REPL is C on a board; here it is Python, so its heap is added
CRASH_WINDOW_S = 2.0
CRASH_LOOP = 3  # exits of its own within CRASH_WINDOW_S of a start, in a row: the VM cannot start
DEFAULT_SCENARIO = "normal:20,fault:10,impact,normal:10"
LONGEST_SCENARIO_S = 3600  # the recording is made in memory up front: an hour at most (it loops)


def vboard_dir(board: Board) -> Path:
    return BUILD_ROOT / "vboard" / board.name


def scenario_samples(spec: str, rate_hz: int, channels: int, seed: int = 1) -> np.ndarray:
    """A recording, or a schedule like 'normal:20,fault:10:0.6,impact,stuck:3,saturated:2,dropout:2,open:2,normal:10'.

    `fault:S:SEVERITY[:KIND]` takes a fault kind of dataset.FAULT_KINDS (outer_race by default); `open` is an
    input left open, reading the positive rail.
    """
    if spec.endswith(".npy"):
        from hostgen.data.recordings import load_recording

        return load_recording(Path(spec), channels)
    rng = np.random.default_rng(seed)
    machine = dataset.random_machine(rng, fault=False)
    parts = []
    for item in spec.split(","):
        kind, *numbers = item.strip().split(":")
        fault_kind = numbers.pop() if kind == "fault" and len(numbers) == 3 else "outer_race"
        if fault_kind not in dataset.FAULT_KINDS:
            raise HostgenError(f"scenario item '{item}': fault kind '{fault_kind}'; use one of {', '.join(dataset.FAULT_KINDS)}")
        try:
            values = [float(n) for n in numbers]
        except ValueError:
            raise HostgenError(f"scenario item '{item}' has a non-number; write e.g. normal:20 or fault:10:0.6:inner_race") from None
        seconds = values[0] if values else 1.0
        if not 0 < seconds <= LONGEST_SCENARIO_S or any(v != v for v in values):
            raise HostgenError(f"scenario item '{item}': give seconds from above 0 to {LONGEST_SCENARIO_S} (the scenario loops)")
        if len(values) > 1 and not 0 <= values[1] <= 10:
            raise HostgenError(f"scenario item '{item}': give a severity from 0 to 10, e.g. fault:10:0.6")
        total_s = sum(len(p) for p in parts) / rate_hz + seconds
        if total_s > LONGEST_SCENARIO_S:
            raise HostgenError(f"scenario '{spec}' lasts more than {LONGEST_SCENARIO_S} s; shorten it (the scenario loops)")
        count = int(seconds * rate_hz)
        if kind == "normal":
            part = dataset.synthesize(machine, count, rng, rate_hz)
        elif kind == "fault":
            severity = values[1] if len(values) > 1 else 1.0
            faulty = dataset.Machine(**{**machine.__dict__, "fault_counts": 2500.0 * severity, "fault_kind": fault_kind})
            part = dataset.synthesize(faulty, count, rng, rate_hz)
        elif kind == "impact":
            part = dataset.synthesize(machine, rate_hz, rng, rate_hz).astype(np.int64)
            ring = np.arange(120)
            part[rate_hz // 2 : rate_hz // 2 + 120] += (20000 * np.exp(-ring / 15) * np.sin(2 * np.pi * 260 * ring / rate_hz)).astype(np.int64)
        elif kind == "stuck":
            part = np.full(count, dataset.synthesize(machine, 1, rng, rate_hz)[0])
        elif kind == "saturated":
            part = dataset.synthesize(machine, count, rng, rate_hz).astype(np.int64) * 40
        elif kind == "dropout":  # readings lost now and then, held at the last one
            part = dataset.synthesize(machine, count, rng, rate_hz)
            for start in range(rate_hz // 10, count - 40, rate_hz // 3):
                part[start : start + 20] = part[start - 1]
        elif kind == "open":
            part = np.full(count, 32767)
        else:
            raise HostgenError(f"scenario item '{item}': use normal, fault, impact, stuck, saturated, dropout or open, or give a .npy")
        parts.append(np.clip(part, -32768, 32767))
    signal_ = np.concatenate(parts).astype(np.int16)
    return np.repeat(signal_[:, None], channels, axis=1)


@dataclass
class Pty:
    master: int
    slave: int
    path: str

    @classmethod
    def open(cls) -> "Pty":
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        return cls(master, slave, os.ttyname(slave))

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class VirtualBoard:
    def __init__(self, board: Board, root: Path, link: Path, packets_link: Path, scenario: str, app_rate_channels: tuple[int, int]):
        self.board = board
        self.root = root
        self.link = link
        self.packets_link = packets_link
        self.scenario = scenario
        self.rate_hz, self.channels = app_rate_channels
        self.fs = root / "fs"
        self.pidfile = link.with_name(link.name + ".pid")
        self.vm: subprocess.Popen | None = None
        self.repl: Pty | None = None
        self.packets: Pty | None = None
        self.gateway_read = self.gateway_write = -1
        self.command_read = self.command_write = -1
        self.last_out = b""
        self.running = True
        self.quick_exits = 0
        self.claimed = False  # only the board that holds the pid file may remove it and the links

    # -- life cycle --------------------------------------------------------------------------

    def claim(self) -> None:
        """Refuse a second virtual board on the same link; clear what a dead one left."""
        if self.pidfile.is_file():
            try:
                pid = int(self.pidfile.read_text())
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError):
                pass
            else:
                raise HostgenError(f"a virtual board already runs on {self.link} (pid {pid}); stop it (kill {pid}) or use --link")
        for stale in (self.link, self.packets_link, self.pidfile):
            if stale.is_symlink() or stale.exists():
                stale.unlink()
        try:
            handle = os.open(self.pidfile, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise HostgenError(f"another virtual board is starting on {self.link}; stop it or use --link") from None
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        self.claimed = True

    def start(self) -> None:
        samples = scenario_samples(self.scenario, self.rate_hz, self.channels)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fs.mkdir(exist_ok=True)
        self.claim()
        scenario = self.root / "scenario.i16"
        samples.tofile(scenario)
        # the gateway UART: a pipe the VM writes (it dies with SIGPIPE if this relay goes away)
        self.gateway_read, self.gateway_write = os.pipe()
        os.set_blocking(self.gateway_read, False)
        # and back: what the gateway writes to the pty goes into a pipe the VM reads (hw_unix.CommandPort)
        self.command_read, self.command_write = os.pipe()
        os.set_blocking(self.command_write, False)
        (self.root / "repl.mpy").write_bytes(compile_mpy({"repl.py": REPL_SCRIPT.read_bytes()}, UNIX_PORT_ARCH)["repl.mpy"])
        self.env = {**os.environ, "FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": f"/proc/self/fd/{self.gateway_write}",
                    "FAULTLINE_COMMANDS": f"/proc/self/fd/{self.command_read}",
                    "FAULTLINE_REALTIME": "1", "FAULTLINE_LOOP": "1"}
        self.repl = Pty.open()
        self.packets = Pty.open()
        self.link.parent.mkdir(parents=True, exist_ok=True)
        self.link.symlink_to(self.repl.path)
        self.packets_link.symlink_to(self.packets.path)
        self._spawn("friendly", "cold")

    def _spawn(self, mode: str, kind: str) -> None:
        heap = unix_heap_bytes(self.board) + REPL_HEAP
        boot = f"import sys\nsys.path.append({str(self.root)!r})\nimport repl"
        command = [micropython_executable(), "-X", f"heapsize={heap}", "-c", boot, self.board.name, mode, kind]
        # SIGINT ignored until the VM's kbd_intr takes it over, so an early Ctrl-C cannot kill the host process
        self.vm = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   cwd=self.fs, env=self.env, bufsize=0, pass_fds=(self.gateway_write, self.command_read),
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        os.set_blocking(self.vm.stdout.fileno(), False)
        self.spawned_at = time.monotonic()

    def stop(self) -> None:
        self.running = False
        if self.vm is not None and self.vm.poll() is None:
            self.vm.kill()
            self.vm.wait()
        for pty in (self.repl, self.packets):
            if pty is not None:
                pty.close()
        for fd in (self.gateway_read, self.gateway_write, self.command_read, self.command_write):
            if fd >= 0:
                os.close(fd)
        self.gateway_read = self.gateway_write = self.command_read = self.command_write = -1
        if not self.claimed:  # refused: the links and pid file are the running board's
            return
        for path in (self.link, self.packets_link, self.pidfile):
            if path.is_symlink() or path.exists():
                path.unlink()

    # -- the relay ---------------------------------------------------------------------------

    def _to_pty(self, pty: Pty, data: bytes) -> None:
        try:
            os.write(pty.master, data)
        except OSError as error:  # nobody reading and the pty is full: the bytes are gone, as on a UART
            if error.errno not in (errno.EAGAIN, errno.EIO):
                raise

    def _to_vm_commands(self) -> None:
        try:
            data = os.read(self.packets.master, 4096)
        except OSError:  # nobody has the gateway side open
            return
        try:
            os.write(self.command_write, data)
        except BlockingIOError:  # the VM is not reading (stopped): dropped, as bytes into a dead UART
            pass

    def _cook(self, data: bytes) -> bytes:
        out = bytearray()
        previous = self.last_out
        for byte in data:
            if byte == 10 and previous != b"\r":
                out += b"\r"
            out.append(byte)
            previous = bytes((byte,))
        self.last_out = previous
        return bytes(out)

    def serve(self) -> None:
        """Relay until stopped; restart the VM after a soft reset (or a crash)."""
        while self.running:
            vm_out = self.vm.stdout.fileno()
            readable, _, _ = select.select([self.repl.master, vm_out, self.gateway_read, self.packets.master], [], [], 0.5)
            if self.repl.master in readable:
                try:
                    data = os.read(self.repl.master, 4096)
                except OSError:
                    data = b""
                if data:
                    if b"\x03" in data and self.vm.poll() is None:
                        self.vm.send_signal(signal.SIGINT)
                    try:
                        self.vm.stdin.write(data)
                    except BrokenPipeError:
                        pass
            if vm_out in readable:
                data = self.vm.stdout.read(4096) or b""
                if data:
                    self._to_pty(self.repl, self._cook(data))
            if self.gateway_read in readable:
                data = os.read(self.gateway_read, 4096)
                if data:
                    self._to_pty(self.packets, data)
            if self.packets.master in readable:
                self._to_vm_commands()
            if self.vm.poll() is not None:
                self._restart(self.vm.returncode)

    def _restart(self, code: int) -> None:
        rest = self.vm.stdout.read() or b""
        self._to_pty(self.repl, self._cook(rest))
        if code == SOFT_RESET_RAW:
            self._spawn("raw", "soft")
        elif code == SOFT_RESET:
            self._spawn("friendly", "soft")
        else:
            # a VM killed by a signal is a board losing power: it boots again, however soon
            quick = code >= 0 and time.monotonic() - self.spawned_at < CRASH_WINDOW_S
            self.quick_exits = self.quick_exits + 1 if quick else 0
            if self.quick_exits >= CRASH_LOOP:
                raise HostgenError(f"the virtual board's VM exits at once (exit {code}): {rest.decode(errors='replace').strip()[-200:]}")
            self._to_pty(self.repl, f"\r\nvirtual board: the VM stopped (exit {code}); restarting\r\n".encode())
            self._spawn("friendly", "cold")


def run_vboard(board: Board, link: str | None, packets_link: str | None, scenario: str | None, app_path: str | None) -> None:
    from hostgen.config.app import load_app

    app = load_app(app_path)
    repl = Path(link) if link else vboard_dir(board) / "repl"
    root = repl.parent  # the board's state (filesystem, scenario, pid) lives beside its link
    vboard = VirtualBoard(board, root, repl, Path(packets_link) if packets_link else root / "gateway",
                          scenario or DEFAULT_SCENARIO, (app["sampling"]["rate_hz"], app["sampling"]["channels"]))

    def stop(*_):
        vboard.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        vboard.start()
        print(f"virtual {board.name}: REPL {vboard.link} -> {vboard.repl.path}; gateway {vboard.packets_link} -> "
              f"{vboard.packets.path}; filesystem {vboard.fs}; pid {os.getpid()}", flush=True)
        vboard.serve()
    finally:
        vboard.stop()
        print(f"virtual {board.name} stopped", file=sys.stderr, flush=True)


class VirtualBoardProcess:
    """A `hostgen vboard` running in the background, for tools and tests; stop() ends it cleanly."""

    def __init__(self, board: str, root: Path, scenario: str | None = None, app_path: str | None = None, timeout: float = 60):
        root.mkdir(parents=True, exist_ok=True)
        self.repl = root / "repl"
        self.gateway = root / "gateway"
        command = [sys.executable, "-m", "hostgen", "vboard", "--board", board, "--link", str(self.repl), "--gateway", str(self.gateway)]
        command += ["--scenario", scenario] if scenario else []
        command += ["--app", app_path] if app_path else []
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("virtual "):
            self.stop()
            detail = self.process.stderr.read().strip().splitlines()
            raise HostgenError(f"the virtual board did not start: {detail[-1] if detail else 'no answer'}")
        self.fs = Path(line.split("filesystem ")[1].split(";")[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
