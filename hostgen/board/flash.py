"""`hostgen flash`: a build's firmware onto a board over its REPL: atomic, verified, resumable, checked.

A firmware lives whole in a directory of its own, `fw-<digest>/`, and the board boots the
one a pointer file names (firmware/boot.py). A flash copies every module into the new
directory (from a directory already on the board when it has the file, else over the
link), checks each by SHA-256, and only then replaces the pointer: a reset at any moment
boots the complete old firmware or the complete new one, and the boot banner names the
directory. A rerun takes the files already in place. After a soft reset the banner must
show this firmware's version, board, config and directory; then older directories go.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hostgen import __version__
from hostgen.board.flashers import flasher_of
from hostgen.board.image import build_firmware, compile_mpy
from hostgen.board.keys import default_key_path, host_key, write_key
from hostgen.board.link import BANNER, ReplSession, find_port
from hostgen.codegen.build import current_build
from hostgen.config.board import Board
from hostgen.errors import HostgenError

EXEC_TIMEOUT_S = 30.0  # per REPL command: a board busy catching up on its sensor after a long command answers late


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


POINTER, POINTER_TEMP = "firmware.txt", "firmware.tmp"  # read by firmware/boot.py
ROOT_FILES = ("boot.py", "main.py")  # run by name at boot, from the filesystem's root
ROOT_TEMP_SUFFIX = ".new"
LEGACY_MANIFEST = "faultline.manifest"  # the modules of a firmware from before fw-<digest>/ directories

SURVEY = """
import os, hashlib, binascii
b = bytearray(512)
m = memoryview(b)
def sha(p):
    f = open(p, 'rb')
    d = hashlib.sha256()
    while True:
        k = f.readinto(b)
        if not k:
            break
        d.update(m[:k])
    f.close()
    return binascii.hexlify(d.digest()).decode()
for d in ['.'] + [e[0] for e in os.ilistdir() if e[0].startswith('fw-') and e[1] == 0x4000]:
    if d != '.':
        print('dir', d)
    for e in os.ilistdir(d):
        if e[1] == 0x8000:
            p = e[0] if d == '.' else d + '/' + e[0]
            print('file', p, sha(p))
for p in %r:
    try:
        print('pointer', p, open(p).read(16))
    except OSError:
        pass
"""

COPY_ON_BOARD = """
b = bytearray(512)
m = memoryview(b)
for s, d in %r:
    src = open(s, 'rb')
    dst = open(d, 'wb')
    while True:
        k = src.readinto(b)
        if not k:
            break
        dst.write(m[:k])
    src.close()
    dst.close()
"""


def firmware_dir_name(modules: dict[str, bytes]) -> str:
    """fw-<8 hex digits of the SHA-256 over every module's name and content>."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + hashlib.sha256(modules[name]).digest())
    return "fw-" + digest.hexdigest()[:8]


@dataclass
class Survey:
    """What the board's filesystem holds: every file's SHA-256 (root and fw-* directories) and the pointers."""

    files: dict[str, str]
    dirs: set[str]
    pointers: dict[str, str]


def survey(session: ReplSession) -> Survey:
    files, dirs, pointers = {}, set(), {}
    for line in session.exec(SURVEY % ((POINTER, POINTER_TEMP),), timeout=120).splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "dir":
            dirs.add(rest.strip())
        elif kind == "file":
            path, digest = rest.split()
            files[path] = digest
        elif kind == "pointer":
            name, _, value = rest.partition(" ")
            pointers[name] = value.strip()
    return Survey(files, dirs, pointers)


def _write_file(session: ReplSession, name: str, data: bytes) -> None:
    session.exec(f"f = open({name!r}, 'wb')\nw = f.write")
    for start in range(0, len(data), 512):
        session.exec(f"w({data[start:start + 512]!r})")
    session.exec("f.close()")


def _remove_dirs(session: ReplSession, found: Survey, dirs: list[str]) -> None:
    for directory in dirs:
        inside = [path for path in found.files if path.startswith(directory + "/")]
        session.exec(f"import os\nfor p in {inside!r}:\n os.remove(p)\nos.rmdir({directory!r})")


@dataclass
class Staged:
    """A firmware whose directory is complete and verified on the board, not yet the one it boots."""

    target: str
    root_changed: list[str]
    root_present: set[str]
    pointer_present: bool
    pointer_temp_valid: bool
    copied: int
    unchanged: int


def stage(session: ReplSession, files: dict[str, bytes], log) -> Staged:
    """Bring fw-<digest>/ (and any new boot.py/main.py, under a temporary name) onto the board, verified."""
    want = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    modules = {name: data for name, data in files.items() if name not in ROOT_FILES}
    target = firmware_dir_name(modules)
    found = survey(session)
    booted = set(found.pointers.values())
    leftovers = sorted(found.dirs - booted - {target})
    if leftovers:
        _remove_dirs(session, found, leftovers)
        log(f"removed firmware directories that nothing boots: {', '.join(leftovers)}")
        found.files = {p: h for p, h in found.files.items() if p.split("/")[0] not in leftovers}
    if target not in found.dirs:
        session.exec(f"import os\nos.mkdir({target!r})")
    by_digest = {digest: path for path, digest in found.files.items()}
    on_board, copied = [], 0
    for name in sorted(modules):
        path = f"{target}/{name}"
        if found.files.get(path) == want[name]:
            continue
        if want[name] in by_digest:
            on_board.append((by_digest[want[name]], path))
        else:
            _write_file(session, path, files[name])
        copied += 1
    if on_board:
        session.exec(COPY_ON_BOARD % (on_board,), timeout=120)
    root_changed = [n for n in ROOT_FILES if n in files and found.files.get(n) != want[n]]
    for name in root_changed:
        if found.files.get(name + ROOT_TEMP_SUFFIX) != want[name]:
            _write_file(session, name + ROOT_TEMP_SUFFIX, files[name])
    check = survey(session)
    staged_paths = {f"{target}/{n}": n for n in modules} | {n + ROOT_TEMP_SUFFIX: n for n in root_changed}
    bad = sorted(n for path, n in staged_paths.items() if check.files.get(path) != want[n])
    if bad:
        raise HostgenError(f"SHA-256 mismatch on the board after copying {', '.join(bad)}; rerun the flash")
    temp = check.pointers.get(POINTER_TEMP, "")
    return Staged(target, root_changed, {n for n in ROOT_FILES if n in check.files}, POINTER in check.pointers,
                  POINTER not in check.pointers and temp in check.dirs, copied + len(root_changed),
                  len(files) - copied - len(root_changed))


def commit_operations(staged: Staged) -> list[str]:
    """The filesystem operations that make the board boot the staged firmware, in order; each one alone.

    Until firmware.txt is removed every boot runs the old firmware; from then on the new one
    (firmware/boot.py takes firmware.tmp while firmware.txt is missing).
    """
    operations = []
    if staged.pointer_temp_valid:  # an earlier commit was cut short between the remove and the rename
        operations.append(f"os.rename({POINTER_TEMP!r}, {POINTER!r})")
    for name in staged.root_changed:
        if name in staged.root_present:
            operations.append(f"os.remove({name!r})")
        operations.append(f"os.rename({name + ROOT_TEMP_SUFFIX!r}, {name!r})")
    operations.append(f"f = open({POINTER_TEMP!r}, 'w')\nf.write({staged.target!r})\nf.close()")
    if staged.pointer_present or staged.pointer_temp_valid:
        operations.append(f"os.remove({POINTER!r})")
    operations.append(f"os.rename({POINTER_TEMP!r}, {POINTER!r})")
    return operations


def commit(session: ReplSession, staged: Staged) -> None:
    session.exec("import os\n" + "\n".join(commit_operations(staged)))


def remove_old_firmware(session: ReplSession, staged: Staged, log) -> None:
    """After the new firmware has booted: every other fw-* directory, and a firmware from before them."""
    found = survey(session)
    old = sorted(found.dirs - {staged.target})
    _remove_dirs(session, found, old)
    legacy = []
    if LEGACY_MANIFEST in found.files:
        legacy = session.exec(f"print(open({LEGACY_MANIFEST!r}).read())").split()
    leftovers = [n for n in legacy if n in found.files and n not in ROOT_FILES] + [LEGACY_MANIFEST]
    leftovers += [n for n in found.files if n.endswith(ROOT_TEMP_SUFFIX) or n == POINTER_TEMP]
    leftovers = sorted({n for n in leftovers if n in found.files})
    if leftovers:
        session.exec(f"import os\nfor n in {leftovers!r}:\n os.remove(n)")
    if old or legacy:
        log(f"removed the previous firmware ({', '.join(old + ([LEGACY_MANIFEST] if legacy else []))})")


def check_banner(text: bytes, board: Board, build: Path, directory: str | None = None) -> str:
    found = BANNER.search(text)
    if found is None:
        raise HostgenError(f"no faultline boot banner after the soft reset; the board printed: {text[-200:]!r}")
    version, name, _, config, booted = (part.decode() for part in found.groups())
    expected_config = _build_config_digest(build)
    if version != __version__:
        raise HostgenError(f"the board reports faultline {version} but this firmware is {__version__}")
    if name != board.name or config != expected_config:
        raise HostgenError(f"the board reports board={name} config={config}; this build is {board.name} config={expected_config}")
    if directory is not None and booted != directory:
        raise HostgenError(f"the board boots {booted}, not the firmware just written ({directory}); rerun the flash")
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
    with ReplSession(port, baud, timeout=EXEC_TIMEOUT_S) as session:
        arch = board_arch(board, session.identity(), log)
        staged = stage(session, image_files(build, arch), log)
        commit(session, staged)
        key_path = Path(key) if key else default_key_path(session, board)
        if key_path is None:
            log("no --key and the board has no unique id: no command key written (commands get NACK 'no key')")
        elif write_key(session, host_key(key_path)):
            log(f"command key written to the board from {key_path} (name it in the gateway config: key = ...)")
        banner = check_banner(session.soft_reset_and_read_banner(), board, build, staged.target)
        remove_old_firmware(session, staged, log)
    return (f"{port}: {staged.copied} file(s) copied, {staged.unchanged} unchanged, all verified by SHA-256; {banner} "
            f"({time.monotonic() - started:.1f} s)")
