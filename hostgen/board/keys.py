"""The board's command key: 32 random bytes as 64 hex digits, kept in a file on the host (made the
first time, mode 0600) and written to the board's faultline.key when it is flashed. The gateway
config names the same file; commands to the board are HMAC-SHA256'd with it (PACKETS.md)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from hostgen.errors import HostgenError

BOARD_KEY = "faultline.key"
KEY_DIR = Path(os.environ.get("FAULTLINE_KEY_DIR", Path.home() / ".config" / "faultline" / "keys"))


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


def default_key_path(session, board) -> Path | None:
    """KEY_DIR/<board>-<the chip's unique id>.key, or None where the board has no unique id (a virtual board)."""
    out = session.exec("try:\n import machine, binascii\n print(binascii.hexlify(machine.unique_id()).decode())\n"
                       "except Exception:\n print('-')")
    uid = out.strip()
    return None if uid in ("", "-") else KEY_DIR / f"{board.name}-{uid}.key"


def write_key(session, key_hex: str) -> bool:
    """Put the key on the board (temporary name, checked, renamed); False if it was already there."""
    want = hashlib.sha256(key_hex.encode()).hexdigest()
    check = ("import hashlib, binascii\ntry:\n print(binascii.hexlify(hashlib.sha256(open(%r, 'rb').read()).digest()).decode())\n"
             "except OSError:\n print('-')")
    if session.exec(check % BOARD_KEY).strip() == want:
        return False
    temp = BOARD_KEY + ".new"
    session.exec(f"f = open({temp!r}, 'wb')\nf.write({key_hex.encode()!r})\nf.close()")
    if session.exec(check % temp).strip() != want:
        raise HostgenError("SHA-256 mismatch on the board after copying the command key; rerun the flash")
    session.exec(f"import os\ntry:\n os.remove({BOARD_KEY!r})\nexcept OSError:\n pass\nos.rename({temp!r}, {BOARD_KEY!r})\n")
    return True
