"""The durable spool: every decoded packet is committed here (SQLite, WAL, synchronous=FULL)
before it counts as received, and kept until the broker has acknowledged it and the
redelivery window after that PUBACK has passed (see `redeliver`).

One table of packets (each as the board sent it: header, payload, CRC; so what is published
is exactly what the board sent), one row per board with its counters and the state a restart resumes
from (newest sequence number, last BOOT, command counter), and a few gateway-wide values
(instance id, bdSeq, broker state). Bounded by size and age: what it must drop, oldest
first, is counted per board.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from hostgen.errors import HostgenError

SPOOL_FILE = "spool.sqlite"
LOCK_FILE = "gateway.lock"
DEVICE_COUNTERS = ("packets_in", "published", "missing", "gaps", "duplicates", "reordered", "restarts", "bad_frames",
                   "dropped", "commands_sent", "commands_ok", "commands_rejected")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS packets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    missing_before INTEGER NOT NULL,
    late INTEGER NOT NULL,
    packet BLOB NOT NULL,
    acked_ms INTEGER  -- when the broker acknowledged it (PUBACK); NULL: still to be published
);
CREATE INDEX IF NOT EXISTS packets_by_device ON packets (device, id);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    port TEXT,
    node INTEGER,
    newest_seq INTEGER,
    boot TEXT,
    config_hash INTEGER,
    last_seen_ms INTEGER,
    link_up INTEGER NOT NULL DEFAULT 0,
    command_counter INTEGER NOT NULL DEFAULT 0,
    sent_up_to INTEGER NOT NULL DEFAULT 0,
    {", ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in DEVICE_COUNTERS)}
);
CREATE TABLE IF NOT EXISTS gateway (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
DEPTH_QUERY = "SELECT device, COUNT(*) FROM packets WHERE acked_ms IS NULL GROUP BY device"


@dataclass(frozen=True)
class SpooledPacket:
    id: int
    device: str
    seq: int
    kind: str
    received_ms: int
    missing_before: int
    late: bool
    packet: bytes  # as the board sent it: header, payload, CRC


def now_ms() -> int:
    return int(time.time() * 1000)


class Spool:
    def __init__(self, directory: Path, max_bytes: int, max_age_s: float, max_pages: int | None = None, lock: bool = False):
        """`lock`: hold the directory for this process (a gateway); a second gateway on it is refused."""
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age_ms = int(max_age_s * 1000)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
            if lock:
                self._lock(directory / LOCK_FILE)
            self.db = sqlite3.connect(directory / SPOOL_FILE, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            if max_pages:
                self.db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            self.db.executescript(SCHEMA)
            self._add_acked_column()
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise HostgenError(f"spool directory {directory} is not usable ({reason}); give --spool DIR on a writable disk "
                               "(or [gateway] spool in the config)") from None
        self.bytes = self.db.execute("SELECT COALESCE(SUM(LENGTH(packet)), 0) FROM packets").fetchone()[0]
        self._nesting = 0
        self._synchronous = "FULL"

    def _add_acked_column(self) -> None:
        """A spool written before acknowledged packets were kept: its table gets the column (every row unacknowledged)."""
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(packets)")]
        if "acked_ms" not in columns:
            self.db.execute("ALTER TABLE packets ADD COLUMN acked_ms INTEGER")
        self.db.execute("CREATE INDEX IF NOT EXISTS packets_acked ON packets (acked_ms) WHERE acked_ms IS NOT NULL")

    def _lock(self, path: Path) -> None:
        self.lock_file = path.open("a+")
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock_file.seek(0)
            holder = self.lock_file.read().strip() or "?"
            raise HostgenError(f"spool directory {self.directory} is in use by another gateway (pid {holder}); stop it, "
                               "or give this one its own --spool DIR") from None
        self.lock_file.truncate(0)
        self.lock_file.write(str(os.getpid()))
        self.lock_file.flush()

    @contextlib.contextmanager
    def transaction(self, durable: bool = True):
        """All or nothing, one commit for everything inside; nested ones join the outermost.

        durable: the commit waits for the disk (fsync: survives a power cut). Otherwise it is
        written to the WAL file but not synced: it survives the process being killed, and a
        power cut may undo it (used for acknowledgements and send marks, whose loss costs a re-send).
        SQLite may have rolled back by itself (a full disk does): see resume_transaction.
        """
        self._nesting += 1
        if self._nesting == 1:
            mode = "FULL" if durable else "NORMAL"
            if mode != self._synchronous:
                self.db.execute(f"PRAGMA synchronous={mode}")
                self._synchronous = mode
            self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._nesting == 1 and self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        finally:
            self._nesting -= 1
        if self._nesting == 0 and self.db.in_transaction:
            self.db.execute("COMMIT")

    def resume_transaction(self) -> None:
        """After an error SQLite answered with a rollback of its own, carry on inside a new transaction."""
        if self._nesting and not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    # -- gateway-wide values ---------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM gateway WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def put(self, key: str, value) -> None:
        self.db.execute("INSERT INTO gateway (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, str(value)))

    def instance_id(self) -> str:
        """This spool's gateway identity: the same after a restart, another spool's is another gateway."""
        value = self.get("instance")
        if value is None:
            value = uuid.uuid4().hex
            self.put("instance", value)
        return value

    def next_bd_seq(self) -> int:
        """Sparkplug bdSeq for the next MQTT session: 0-255, carried across restarts."""
        value = (int(self.get("bd_seq", "-1")) + 1) % 256
        self.put("bd_seq", value)
        return value

    # -- boards --------------------------------------------------------------------------------

    def register(self, device: str, port: str) -> None:
        self.db.execute("INSERT INTO devices (device, port) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET port = excluded.port",
                        (device, port))

    def device(self, device: str) -> dict:
        cursor = self.db.execute("SELECT * FROM devices WHERE device = ?", (device,))
        row = cursor.fetchone()
        if row is None:
            return {}
        record = dict(zip((c[0] for c in cursor.description), row))
        record["boot"] = json.loads(record["boot"]) if record["boot"] else None
        return record

    def devices(self) -> list[dict]:
        return [self.device(name) for (name,) in self.db.execute("SELECT device FROM devices ORDER BY device").fetchall()]

    def update_device(self, device: str, counts: dict | None = None, **values) -> None:
        """Add `counts` to the board's counters and set `values` (boot as a dict), in one statement."""
        counts = {k: v for k, v in (counts or {}).items() if v}
        if "boot" in values and values["boot"] is not None:
            values["boot"] = json.dumps(values["boot"])
        assignments = [f"{k} = {k} + ?" for k in counts] + [f"{k} = ?" for k in values]
        if assignments:
            self.db.execute(f"UPDATE devices SET {', '.join(assignments)} WHERE device = ?",
                            (*counts.values(), *values.values(), device))

    # -- packets ---------------------------------------------------------------------------------

    def add(self, received: list[tuple], device_updates: dict) -> None:
        """Commit received packets and their boards' counters in one transaction (durable on return).

        `received`: (device, seq, kind, received_ms, missing_before, late, packet bytes) tuples;
        `device_updates`: device -> (counts, values) for update_device.
        """
        with self.transaction():
            self.db.executemany("INSERT INTO packets (device, seq, kind, received_ms, missing_before, late, packet) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", received)
            for device, (counts, values) in device_updates.items():
                self.update_device(device, counts, **values)
        self.bytes += sum(len(r[6]) for r in received)

    def pending(self, device: str, after_id: int, limit: int) -> list[SpooledPacket]:
        rows = self.db.execute("SELECT id, device, seq, kind, received_ms, missing_before, late, packet FROM packets "
                               "WHERE device = ? AND id > ? AND acked_ms IS NULL ORDER BY id LIMIT ?",
                               (device, after_id, limit)).fetchall()
        return [SpooledPacket(*row[:6], bool(row[6]), bytes(row[7])) for row in rows]

    def delivered(self, ids_by_device: dict[str, list[int]], now: int) -> None:
        """The broker acknowledged these: kept, marked, until the redelivery window has passed (prune_acked)."""
        with self.transaction():
            for device, ids in ids_by_device.items():
                marks = ",".join("?" * len(ids))
                count = self.db.execute(f"UPDATE packets SET acked_ms = ? WHERE id IN ({marks}) AND acked_ms IS NULL",
                                        (now, *ids)).rowcount
                self.update_device(device, {"published": count})

    def redeliver(self, acked_since_ms: int) -> dict[str, int]:
        """The broker's session was lost: what it acknowledged since then may have died with it (a broker holds
        a slow or offline subscriber's queue in memory between saves), so those packets are published again."""
        with self.transaction():
            again = dict(self.db.execute("SELECT device, COUNT(*) FROM packets WHERE acked_ms >= ? GROUP BY device",
                                         (acked_since_ms,)).fetchall())
            self.db.execute("UPDATE packets SET acked_ms = NULL WHERE acked_ms >= ?", (acked_since_ms,))
            for device, count in again.items():
                self.update_device(device, {"published": -count})
        return again

    def prune_acked(self, acked_before_ms: int) -> None:
        """Acknowledged packets out of the redelivery window leave the spool."""
        with self.transaction():
            size = self.db.execute("SELECT COALESCE(SUM(LENGTH(packet)), 0) FROM packets WHERE acked_ms < ?",
                                   (acked_before_ms,)).fetchone()[0]
            if size:
                self.db.execute("DELETE FROM packets WHERE acked_ms < ?", (acked_before_ms,))
                self.bytes -= size

    def mark_sent(self, sent_up_to: dict[str, int]) -> None:
        """The newest spool id published per board: a packet at or below it, sent again, may be a duplicate."""
        with self.transaction():
            self.db.executemany("UPDATE devices SET sent_up_to = ? WHERE device = ?", [(v, k) for k, v in sent_up_to.items()])

    def depth(self) -> dict[str, int]:
        """Packets per board still to be published (acknowledged ones kept for redelivery are not counted)."""
        return dict(self.db.execute(DEPTH_QUERY).fetchall())

    def enforce_bounds(self, now: int | None = None) -> dict[str, int]:
        """Drop packets older than max age, then the oldest until under max bytes; returns drops per board.

        Acknowledged packets kept for redelivery go first and are not drops.
        """
        now = now_ms() if now is None else now
        dropped: dict[str, int] = {}
        with self.transaction():
            if self.bytes > self.max_bytes:
                self.prune_acked(now + 1)
            old = self.db.execute("SELECT device, COUNT(*), SUM(LENGTH(packet)) FROM packets WHERE received_ms < ? "
                                  "AND acked_ms IS NULL GROUP BY device", (now - self.max_age_ms,)).fetchall()
            if old:
                self.db.execute("DELETE FROM packets WHERE received_ms < ? AND acked_ms IS NULL", (now - self.max_age_ms,))
            for device, count, size in old:
                dropped[device] = dropped.get(device, 0) + count
                self.bytes -= size
            while self.bytes > self.max_bytes:
                rows = self.db.execute("SELECT id, device, LENGTH(packet) FROM packets WHERE acked_ms IS NULL "
                                       "ORDER BY id LIMIT 256").fetchall()
                if not rows:
                    self.bytes = 0
                    break
                cut = []
                for row_id, device, size in rows:
                    cut.append(row_id)
                    dropped[device] = dropped.get(device, 0) + 1
                    self.bytes -= size
                    if self.bytes <= self.max_bytes:
                        break
                self.db.execute(f"DELETE FROM packets WHERE id IN ({','.join('?' * len(cut))})", cut)
            for device, count in dropped.items():
                self.update_device(device, {"dropped": count})
        return dropped

    def make_room(self, share: float = 0.1) -> dict[str, int]:
        """The disk (or the database's page limit) is full: drop the oldest share of the spool, counted."""
        total = self.db.execute("SELECT COUNT(*) FROM packets").fetchone()[0]
        keep_bytes, self.max_bytes = self.max_bytes, max(0, int(self.bytes * (1 - share)) - 1) if total else 0
        try:
            return self.enforce_bounds()
        finally:
            self.max_bytes = keep_bytes

    def close(self) -> None:
        """Flush: the WAL checkpointed into the database file, then closed."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()


def read_status(directory: Path) -> tuple[dict, list[dict], dict[str, int]]:
    """For `hostgen gateway --status`: the gateway values, the boards and the spool depth, read-only."""
    path = directory / SPOOL_FILE
    if not path.is_file():
        raise HostgenError(f"no gateway spool at {directory}; give --spool DIR (the gateway's [gateway] spool)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        values = dict(db.execute("SELECT key, value FROM gateway").fetchall())
        cursor = db.execute("SELECT * FROM devices ORDER BY device")
        names = [c[0] for c in cursor.description]
        boards = [dict(zip(names, row)) for row in cursor.fetchall()]
        acked_kept = any(row[1] == "acked_ms" for row in db.execute("PRAGMA table_info(packets)"))  # not in older spools
        depth = dict(db.execute(DEPTH_QUERY if acked_kept else "SELECT device, COUNT(*) FROM packets GROUP BY device").fetchall())
    finally:
        db.close()
    pid = int(values.get("pid", "0") or 0)
    alive = False
    if pid:
        try:
            os.kill(pid, 0)
            alive = True
        except (ProcessLookupError, PermissionError):
            alive = False
    values["running"] = alive
    return values, boards, depth
