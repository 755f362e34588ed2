"""The spool on its own: durable across reopening, bounded by size and age, and a full disk (SQLite's
page limit standing in for it) costs counted drops of the oldest packets, never a crash."""

from __future__ import annotations

import sqlite3

import pytest

from hostgen.board.packets import cobs_decode, encode
from hostgen.errors import HostgenError
from hostgen.gateway.spool import Spool, read_status


def _rows(device, first, count, received_ms=1000):
    return [(device, seq, "WINDOW", received_ms, 0, False, cobs_decode(encode("WINDOW", 1, seq, 0, rms=seq)[:-1]))
            for seq in range(first, first + count)]


def test_packets_survive_reopening_and_leave_only_when_acknowledged(tmp_path):
    spool = Spool(tmp_path, 10**9, 10**9)
    spool.register("a", "/dev/x")
    spool.add(_rows("a", 0, 5), {"a": ({"packets_in": 5}, {"newest_seq": 4})})
    spool.close()
    spool = Spool(tmp_path, 10**9, 10**9)
    rows = spool.pending("a", 0, 10)
    assert [r.seq for r in rows] == [0, 1, 2, 3, 4] and spool.device("a")["newest_seq"] == 4
    spool.delivered({"a": [rows[0].id, rows[1].id]}, now=5_000)
    assert [r.seq for r in spool.pending("a", 0, 10)] == [2, 3, 4] and spool.device("a")["published"] == 2
    assert spool.depth() == {"a": 3}
    assert spool.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_acknowledged_packets_are_kept_for_the_redelivery_window_then_leave(tmp_path):
    spool = Spool(tmp_path, 10**9, 10**9)
    spool.register("a", "/dev/x")
    spool.add(_rows("a", 0, 4), {})
    rows = spool.pending("a", 0, 10)
    spool.delivered({"a": [rows[0].id]}, now=1_000)
    spool.delivered({"a": [rows[1].id, rows[2].id]}, now=3_000)
    spool.delivered({"a": [rows[2].id]}, now=3_500)  # a repeated PUBACK counts once
    assert spool.device("a")["published"] == 3 and spool.depth() == {"a": 1}
    assert spool.redeliver(acked_since_ms=2_000) == {"a": 2}  # the broker lost its session: PUBACKs since 2 s taken back
    assert [r.seq for r in spool.pending("a", 0, 10)] == [1, 2, 3] and spool.device("a")["published"] == 1
    spool.prune_acked(acked_before_ms=1_001)
    assert spool.db.execute("SELECT COUNT(*) FROM packets").fetchone()[0] == 3 and spool.redeliver(0) == {}


def test_a_spool_bound_takes_acknowledged_packets_first_and_does_not_count_them(tmp_path):
    frame_size = len(_rows("a", 0, 1)[0][6])
    spool = Spool(tmp_path, 4 * frame_size, 10**9)
    spool.register("a", "/dev/x")
    spool.add(_rows("a", 0, 6), {})
    spool.delivered({"a": [r.id for r in spool.pending("a", 0, 3)]}, now=1_000)
    assert spool.enforce_bounds(now=2_000) == {} and [r.seq for r in spool.pending("a", 0, 10)] == [3, 4, 5]


def test_bounds_by_size_and_age_drop_the_oldest_and_count_them(tmp_path):
    frame_size = len(_rows("a", 0, 1)[0][6])
    spool = Spool(tmp_path, 10 * frame_size, 60)
    for name in ("a", "b"):
        spool.register(name, name)
    spool.add(_rows("a", 0, 8, received_ms=10_000) + _rows("b", 0, 8, received_ms=100_000), {})
    assert spool.enforce_bounds(now=50_000) == {"a": 6}
    assert spool.enforce_bounds(now=100_000 + 61_000) == {"a": 2, "b": 8}
    assert spool.device("a")["dropped"] == 8 and spool.depth() == {}


def test_a_full_disk_makes_room_by_dropping_the_oldest(tmp_path):
    spool = Spool(tmp_path, 10**9, 10**9, max_pages=40)
    spool.register("a", "a")
    added = 0
    with pytest.raises(sqlite3.OperationalError, match="full"):
        while True:
            spool.add(_rows("a", added, 50), {})
            added += 50
    dropped = spool.make_room(0.5)
    assert dropped["a"] >= added // 3
    spool.add(_rows("a", added, 50), {})  # room again
    assert spool.device("a")["dropped"] == dropped["a"]


def test_an_unusable_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HostgenError, match="not usable"):
        Spool(blocker / "spool", 1, 1)


def test_the_committed_payload_module_is_generated_from_the_committed_proto(tmp_path):
    grpc_tools = pytest.importorskip("grpc_tools.protoc", reason="regenerating needs grpcio-tools (pip install grpcio-tools)")
    from pathlib import Path

    import hostgen.gateway as package

    source = Path(package.__file__).parent
    assert grpc_tools.main(["protoc", f"-I{source}", f"--python_out={tmp_path}", str(source / "sparkplug_b.proto")]) == 0
    assert (tmp_path / "sparkplug_b_pb2.py").read_text() == (source / "sparkplug_b_pb2.py").read_text(), \
        "regenerate: cd hostgen/gateway && python -m grpc_tools.protoc -I. --python_out=. sparkplug_b.proto"


def test_a_spool_from_before_acknowledged_packets_were_kept_opens_with_its_packets_pending(tmp_path):
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    db.execute("CREATE TABLE packets (id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, seq INTEGER NOT NULL, "
               "kind TEXT NOT NULL, received_ms INTEGER NOT NULL, missing_before INTEGER NOT NULL, late INTEGER NOT NULL, "
               "packet BLOB NOT NULL)")
    db.executemany("INSERT INTO packets (device, seq, kind, received_ms, missing_before, late, packet) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   _rows("a", 0, 3))
    db.execute("CREATE TABLE devices (device TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE gateway (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.commit()
    db.close()
    assert read_status(tmp_path)[2] == {"a": 3}, "--status reads it before a gateway has opened it"
    spool = Spool(tmp_path, 10**9, 10**9)
    assert [r.seq for r in spool.pending("a", 0, 10)] == [0, 1, 2] and spool.depth() == {"a": 3}
