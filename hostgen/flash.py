"""`hostgen flash`: a build's firmware onto a board over its REPL: verified, resumable, checked.

Every file goes in under a temporary name, is checked by SHA-256 on the board, and is
renamed into place only when all are there: a copy cut short leaves the old firmware
bootable, and a rerun takes the temporary files already present instead of copying again.
Files the board already has are not copied. After a soft reset the boot banner must show
this firmware's version, the board, and this build's config.

The board's command key (faultline.key: 32 random bytes as hex, see PACKETS.md) is written
from a key file on the host, made the first time: the gateway config names the same file.
It is never part of the build, and reflashing keeps it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import subprocess
import time
from pathlib import Path

from hostgen.board_link import BANNER, ReplSession, find_port
from hostgen.boards import Board
from hostgen.build import default_out, generate
from hostgen.errors import HostgenError
from hostgen.firmware_image import compile_mpy, firmware_sources, generated_modules
from hostgen.paths import REPO_ROOT

TEMP_SUFFIX = ".new"
MANIFEST = "faultline.manifest"
FIRMWARE_VERSION_SOURCE = REPO_ROOT / "firmware" / "pipeline.py"
FLASH_BAUD = 460_800
BOARD_KEY = "faultline.key"
KEY_DIR = Path(os.environ.get("FAULTLINE_KEY_DIR", Path.home() / ".config" / "faultline" / "keys"))


def firmware_version() -> str:
    found = re.search(r"^VERSION = \((\d+), (\d+), (\d+)\)", FIRMWARE_VERSION_SOURCE.read_text(), re.M)
    return ".".join(found.groups())


# -- stock MicroPython first ---------------------------------------------------------------------

def base_firmware_commands(board: Board, image: Path, port: str | None) -> list[list[str]]:
    """The commands that write stock MicroPython, from the board file; the image's kind is checked."""
    flashing = board["flashing"]
    if not image.is_file():
        raise HostgenError(f"firmware image {image} not found")
    head = image.read_bytes()[:16]
    method = flashing["method"]
    kinds = {
        "esptool": (head[:1] == b"\xe9", "an ESP32 .bin image (first byte 0xE9), e.g. from micropython.org/download"),
        "dfu": (head[:5] == b"DfuSe", "a DfuSe .dfu image"),
        "stlink": (head[:1] == b":" or image.suffix == ".bin", "an Intel .hex (or a raw .bin) image"),
    }
    good, kind = kinds[method]
    if image.suffix != flashing["firmware_suffix"] or not good:
        raise HostgenError(
            f"{image} is not {kind} with suffix {flashing['firmware_suffix']}, which {board.name} takes ({method}); "
            "download the MicroPython image for this board"
        )
    if method == "esptool":
        if port is None:
            raise HostgenError(f"esptool needs the board's serial port: give PORT= (the {board.name}'s USB-UART)")
        common = ["esptool", "--chip", flashing["chip"], "--port", port, "--baud", str(FLASH_BAUD)]
        return [common + ["erase-flash"], common + ["write-flash", f"0x{flashing['firmware_offset']:x}", str(image)]]
    if method == "dfu":
        vid_pid = flashing["usb_ids"][0]
        return [["dfu-util", "-a", "0", "-d", vid_pid, "-D", str(image)]]
    if image.suffix == ".hex":
        return [["st-flash", "--reset", "--format", "ihex", "write", str(image)]]
    return [["st-flash", "--reset", "write", str(image), f"0x{flashing['firmware_offset']:x}"]]


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

def current_build(board: Board, log) -> Path:
    """build/<board>/, regenerated first if any of its inputs changed since it was made."""
    out = default_out(board)
    record_path = out / "build.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        stale = [role for role, entry in record["inputs"].items()
                 if not (REPO_ROOT / entry["path"]).is_file()
                 or hashlib.sha256((REPO_ROOT / entry["path"]).read_bytes()).hexdigest() != entry["sha256"]]
        if not stale:
            return out
        log(f"inputs changed since the last build ({', '.join(stale)}): regenerating")
        generate(board, record.get("model_arg"), None, record["model_name"], None, out, None, log)
    else:
        log(f"no build for {board.name} yet: generating")
        generate(board, None, None, None, None, out, None, log)
    return out


def image_files(build: Path, arch: str) -> dict[str, bytes]:
    built = {path.name: path.read_bytes() for path in build.glob("*.py")}
    return compile_mpy(firmware_sources() | generated_modules(built), arch)


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


def host_key(path: Path) -> str:
    """The board's key as 64 hex digits, from `path`; a fresh random one (mode 0600) if it does not exist."""
    if path.is_file():
        text = path.read_text().strip()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text.lower()):
            raise HostgenError(f"key file {path} is not 64 hex digits; remove it to have a fresh key made")
        return text.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_hex(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(text + "\n")
    return text


def default_key_path(session: ReplSession, board: Board) -> Path | None:
    """KEY_DIR/<board>-<the chip's unique id>.key, or None where the board has no unique id (a virtual board)."""
    out = session.exec("try:\n import machine, binascii\n print(binascii.hexlify(machine.unique_id()).decode())\n"
                       "except Exception:\n print('-')")
    uid = out.strip()
    return None if uid in ("", "-") else KEY_DIR / f"{board.name}-{uid}.key"


def write_key(session: ReplSession, key_hex: str, log) -> bool:
    """Put the key on the board (temporary name, checked, renamed); False if it was already there."""
    want = hashlib.sha256(key_hex.encode()).hexdigest()
    if _remote_hashes(session, [BOARD_KEY]).get(BOARD_KEY) == want:
        return False
    _write_file(session, BOARD_KEY + TEMP_SUFFIX, key_hex.encode())
    if _remote_hashes(session, [BOARD_KEY + TEMP_SUFFIX]).get(BOARD_KEY + TEMP_SUFFIX) != want:
        raise HostgenError("SHA-256 mismatch on the board after copying the command key; rerun the flash")
    session.exec(f"import os\ntry:\n os.remove({BOARD_KEY!r})\nexcept OSError:\n pass\n"
                 f"os.rename({BOARD_KEY + TEMP_SUFFIX!r}, {BOARD_KEY!r})\n")
    return True


def _previous_manifest(session: ReplSession) -> list[str]:
    return session.exec(f"print(open({MANIFEST!r}).read())").split()


def check_banner(text: bytes, board: Board, build: Path) -> str:
    found = BANNER.search(text)
    if found is None:
        raise HostgenError(f"no faultline boot banner after the soft reset; the board printed: {text[-200:]!r}")
    version, name, _, config = (part.decode() for part in found.groups())
    expected_config = _build_config_digest(build)
    if version != firmware_version():
        raise HostgenError(f"the board reports faultline {version} but this firmware is {firmware_version()}")
    if name != board.name or config != expected_config:
        raise HostgenError(f"the board reports board={name} config={config}; this build is {board.name} config={expected_config}")
    return found.group(0).decode()


def _build_config_digest(build: Path) -> str:
    found = re.search(r'^CONFIG_DIGEST = "(\w+)"', (build / "faultline_config.py").read_text(), re.M)
    return found.group(1)


def flash(board: Board, port: str | None, baud: int, firmware: str | None, dry_run: bool, log, key: str | None = None) -> str:
    started = time.monotonic()
    if firmware:
        write_base_firmware(board, Path(firmware), port, dry_run, log)
        if dry_run:
            return "dry run: nothing written"
    port = port or find_port(board)
    build = current_build(board, log)
    with ReplSession(port, baud) as session:
        arch = board_arch(board, session.identity(), log)
        copied, unchanged = copy_files(session, image_files(build, arch), log)
        key_path = Path(key) if key else default_key_path(session, board)
        if key_path is None:
            log("no --key and the board has no unique id: no command key written (commands get NACK 'no key')")
        elif write_key(session, host_key(key_path), log):
            log(f"command key written to the board from {key_path} (name it in the gateway config: key = ...)")
        banner = check_banner(session.soft_reset_and_read_banner(), board, build)
    return f"{port}: {copied} file(s) copied, {unchanged} unchanged, all verified by SHA-256; {banner} ({time.monotonic() - started:.1f} s)"
