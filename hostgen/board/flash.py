"""`hostgen flash`: a build's firmware onto a board over its REPL: verified, resumable, checked.

Every file goes in under a temporary name, is checked by SHA-256 on the board, and is
renamed into place only when all are there: a copy cut short leaves the old firmware
bootable, and a rerun takes the temporary files already present instead of copying again.
Files the board already has are not copied. After a soft reset the boot banner must show
this firmware's version, the board, and this build's config.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import time
from pathlib import Path

from hostgen import __version__
from hostgen.board.flashers import flasher_of
from hostgen.board.image import build_firmware, compile_mpy
from hostgen.board.link import BANNER, ReplSession, find_port
from hostgen.codegen.build import current_build
from hostgen.config.board import Board
from hostgen.errors import HostgenError

TEMP_SUFFIX = ".new"
EXEC_TIMEOUT_S = 30.0  # per REPL command: a board busy catching up on its sensor after a long command answers late
MANIFEST = "faultline.manifest"


# -- stock MicroPython first ---------------------------------------------------------------------

def base_firmware_commands(board: Board, image: Path, port: str | None) -> list[list[str]]:
    """The commands that write stock MicroPython, from the board file's flash method; the image's kind is checked."""
    flashing = board["flashing"]
    if not image.is_file():
        raise HostgenError(f"firmware image {image} not found")
    flasher = flasher_of(board)
    if image.suffix != flashing["firmware_suffix"] or not flasher.accepts(image.read_bytes()[:16], image):
        raise HostgenError(
            f"{image} is not {flasher.image_kind} with suffix {flashing['firmware_suffix']}, which {board.name} takes "
            f"({flasher.name}); download the MicroPython image for this board"
        )
    return flasher.commands(board, image, port)


def write_base_firmware(board: Board, image: Path, port: str | None, dry_run: bool, log) -> None:
    for command in base_firmware_commands(board, image, port):
        log("$ " + shlex.join(command))
        if dry_run:
            continue
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except FileNotFoundError:
            raise HostgenError(f"{command[0]} not found; install it (apt-get install {command[0]}) to write stock MicroPython") from None
        if result.returncode != 0:
            raise HostgenError(f"{command[0]} failed: {(result.stderr or result.stdout).strip().splitlines()[-1]}")


# -- the faultline files -------------------------------------------------------------------------

def image_files(build: Path, arch: str) -> dict[str, bytes]:
    return compile_mpy(build_firmware(build), arch)


def board_arch(board: Board, identity: dict, log) -> str:
    """The arch to compile for: the board file's, or the virtual board's own (and say so)."""
    expected = board["core"]["mpy_cross_arch"]
    if identity["platform"] == "linux":
        log(f"{board.name} here is a virtual board (MicroPython unix port): compiling for {identity['arch']}, not {expected}")
        return identity["arch"]
    if identity["arch"] != expected:
        raise HostgenError(
            f"the board reports arch {identity['arch']} but boards/{board.name}.toml says {expected}: "
            "is BOARD= the board on this port?"
        )
    return expected


def _remote_hashes(session: ReplSession, names: list[str]) -> dict[str, str]:
    code = (
        "import os, hashlib, binascii\n"
        f"for n in {names!r}:\n"
        " try:\n  f = open(n, 'rb')\n except OSError:\n  continue\n"
        " h = hashlib.sha256()\n b = bytearray(512)\n m = memoryview(b)\n"
        " while True:\n  k = f.readinto(b)\n  if not k:\n   break\n  h.update(m[:k])\n"
        " f.close()\n print(n, binascii.hexlify(h.digest()).decode())\n"
    )
    out = session.exec(code, timeout=60)
    return dict(line.split() for line in out.splitlines() if line.strip())


def _write_file(session: ReplSession, name: str, data: bytes) -> None:
    session.exec(f"f = open({name!r}, 'wb')\nw = f.write")
    for start in range(0, len(data), 512):
        session.exec(f"w({data[start:start + 512]!r})")
    session.exec("f.close()")


def copy_files(session: ReplSession, files: dict[str, bytes], log) -> tuple[int, int]:
    """Bring the board's files to `files`; returns (copied, unchanged)."""
    want = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    names = sorted(want)
    have = _remote_hashes(session, names + [n + TEMP_SUFFIX for n in names] + [MANIFEST])
    changed = [n for n in names if have.get(n) != want[n]]
    for name in changed:
        if have.get(name + TEMP_SUFFIX) != want[name]:
            _write_file(session, name + TEMP_SUFFIX, files[name])
    staged = _remote_hashes(session, [n + TEMP_SUFFIX for n in changed])
    bad = [n for n in changed if staged.get(n + TEMP_SUFFIX) != want[n]]
    if bad:
        raise HostgenError(f"SHA-256 mismatch on the board after copying {', '.join(bad)}; rerun the flash")
    session.exec(
        "import os\n"
        f"for n in {changed!r}:\n"
        " try:\n  os.remove(n)\n except OSError:\n  pass\n"
        " os.rename(n + '.new', n)\n"
    )
    previous = _previous_manifest(session) if MANIFEST in have else []
    stale = sorted(set(previous) - set(names))
    if stale:
        session.exec(f"import os\nfor n in {stale!r}:\n try:\n  os.remove(n)\n except OSError:\n  pass\n")
        log(f"removed files the new firmware no longer has: {', '.join(stale)}")
    _write_file(session, MANIFEST, "\n".join(names).encode())
    final = _remote_hashes(session, names)
    wrong = [n for n in names if final.get(n) != want[n]]
    if wrong:
        raise HostgenError(f"SHA-256 mismatch on the board for {', '.join(wrong)}; rerun the flash")
    return len(changed), len(names) - len(changed)


def _previous_manifest(session: ReplSession) -> list[str]:
    return session.exec(f"print(open({MANIFEST!r}).read())").split()


def check_banner(text: bytes, board: Board, build: Path) -> str:
    found = BANNER.search(text)
    if found is None:
        raise HostgenError(f"no faultline boot banner after the soft reset; the board printed: {text[-200:]!r}")
    version, name, _, config = (part.decode() for part in found.groups())
    expected_config = _build_config_digest(build)
    if version != __version__:
        raise HostgenError(f"the board reports faultline {version} but this firmware is {__version__}")
    if name != board.name or config != expected_config:
        raise HostgenError(f"the board reports board={name} config={config}; this build is {board.name} config={expected_config}")
    return found.group(0).decode()


def _build_config_digest(build: Path) -> str:
    found = re.search(r'^CONFIG_DIGEST = "(\w+)"', (build / "faultline_config.py").read_text(), re.M)
    return found.group(1)


def flash(board: Board, port: str | None, baud: int, firmware: str | None, dry_run: bool, log) -> str:
    started = time.monotonic()
    if firmware:
        write_base_firmware(board, Path(firmware), port, dry_run, log)
        if dry_run:
            return "dry run: nothing written"
    port = port or find_port(board)
    build = current_build(board, log)
    with ReplSession(port, baud, timeout=EXEC_TIMEOUT_S) as session:
        arch = board_arch(board, session.identity(), log)
        copied, unchanged = copy_files(session, image_files(build, arch), log)
        banner = check_banner(session.soft_reset_and_read_banner(), board, build)
    return f"{port}: {copied} file(s) copied, {unchanged} unchanged, all verified by SHA-256; {banner} ({time.monotonic() - started:.1f} s)"
