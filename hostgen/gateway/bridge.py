"""The gateway's loop: N board links -> decode -> spool (committed) -> Sparkplug B over MQTT, and back.

One thread reads every link, commits what it decoded to the spool, and publishes from
the spool in order per board, at most `max_inflight` QoS 1 messages awaiting PUBACK; a
PUBACK marks the packet acknowledged, and it leaves the spool `redeliver_s` later. The
MQTT connection is driven from the same thread (mqtt_session.py). After a reconnect (a new
MQTT session: NBIRTH with the next bdSeq, DBIRTH per board) the spool is sent again from
its oldest unacknowledged packet per board, marked historical if it was received before
this session began; a session the broker lost (not our own disconnect) also makes what it
acknowledged in the last `redeliver_s` unacknowledged again. With a `primary_host`, births
and data wait for its Sparkplug STATE to say online. A board's BOOT (reset), a new config
hash in its heartbeat, or silence longer than `silent_s` gives DDEATH, and the next packet
a new DBIRTH.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass

from hostgen.board.packets import COMMAND_REASONS, SequenceTracker, decode_packet
from hostgen.errors import HostgenError
from hostgen.gateway import sparkplug as spb
from hostgen.gateway.commands import Rejected, command_frame, parse_dcmd, read_key
from hostgen.gateway.config import GatewayConfig
from hostgen.gateway.links import BoardLink
from hostgen.gateway.metrics import GatewayMetrics
from hostgen.gateway.mqtt_session import BAD_CREDENTIALS, Event, MqttSession
from hostgen.gateway.spool import Spool, SpooledPacket, now_ms

PROBE_S = 1.0  # how long a starting gateway listens for another one answering for its edge node id
STATUS_EVERY_S = 1.0
NODE_REPORT_EVERY_S = 10.0
REPLAYED = COMMAND_REASONS.index("replayed counter")
ACK_POLL_S = 0.002  # the loop's wait for links while the in-flight window is full
NO_HOST_STATE = -1  # no STATE from the primary host accepted yet


@dataclass
class Board:
    """A board as the bridge sees it: its link, and its Sparkplug state in the current session."""

    link: BoardLink
    key: bytes | None
    boot: dict | None = None
    config_hash: int | None = None
    born: bool = False  # DBIRTH published in this session, no DDEATH since
    cursor: int = 0  # the newest spool id published in this session
    dirty: bool = True  # the spool may hold packets of this board after the cursor
    sent_up_to: int = 0  # the newest spool id ever published (kept in the spool): at or below it, a re-send
    last_rx: float = -1e9  # monotonic time of the last packet; never yet
    counter: int = 0  # the last command counter used

    @property
    def name(self) -> str:
        return self.link.name


class Gateway:
    def __init__(self, config: GatewayConfig, log):
        self.config = config
        self.log = log
        self.spool = Spool(config.spool_dir, config.spool_max_bytes, config.spool_max_age_s, lock=True)
        self.instance = self.spool.instance_id()
        self.metrics = GatewayMetrics()
        self.tracker = SequenceTracker()
        self.boards: dict[str, Board] = {}
        for board_config in config.boards:
            self.spool.register(board_config.name, board_config.port)
            record = self.spool.device(board_config.name)
            if record.get("newest_seq") is not None:
                self.tracker.resume(board_config.name, record["newest_seq"])
            key = read_key(board_config.key) if board_config.key else None
            board = Board(BoardLink(board_config, self.tracker, config.reconnect_s), key, record.get("boot"),
                          record.get("config_hash"), counter=record.get("command_counter", 0),
                          sent_up_to=record.get("sent_up_to", 0))
            board.link.node = record.get("node")  # what its RESEND on opening the link is addressed to
            self.boards[board.name] = board
        self.session: MqttSession | None = None
        self.ready = False  # NBIRTH published in the current session
        self.ever_connected = False
        self.probed = False
        self.probe_until = 0.0
        self.next_connect = 0.0
        self.outage_logged = False
        self.inflight: dict[int, tuple[str, int, int] | None] = {}  # mid -> (board, spool id, received ms), or None
        self.host_online = config.primary_host is None  # in this session; no primary host: always
        self.host_state_ms = NO_HOST_STATE  # the timestamp of the newest primary host STATE accepted
        self.seq = spb.SequenceCounter()
        self.bd_seq = 0
        self.bd_seq_used = True
        self.stopping = False
        self.fatal: HostgenError | None = None
        self.stopped_reading = False
        self.first_turn = 0  # where _choose starts among the boards this turn
        self.last_status = self.last_bounds = self.last_node_report = 0.0
        self.dropped_total = int(self.spool.get("dropped_total", "0"))
        self.commands_rejected = 0
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    # -- topics --------------------------------------------------------------------------------

    def topic(self, message: str, device: str | None = None) -> str:
        return spb.topic(self.config.group, message, self.config.edge_node, device)

    # -- life cycle --------------------------------------------------------------------------

    def request_stop(self, *_):
        self.stopping = True
        self._wake()

    def _wake(self) -> None:
        """Cut the loop's wait short (a signal, or the MQTT connection opened or failed)."""
        try:
            os.write(self.wake_write, b"x")
        except OSError:  # the pipe is full: the loop has wake-ups waiting already
            pass

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if self.config.metrics_port:
            self.metrics.serve(self.config.metrics_port)
        self.spool.put("pid", os.getpid())
        self.spool.put("edge_node", f"{self.config.group}/{self.config.edge_node}")
        self.spool.put("broker", self.config.broker_url)
        for board in self.boards.values():
            if not board.link.open():
                self.log(f"board {board.name}: cannot open {board.link.config.port} ({board.link.problem}); retrying")
        self.log(f"gateway {self.config.group}/{self.config.edge_node}: {len(self.boards)} board(s), broker "
                 f"{self.config.broker_url}, spool {self.config.spool_dir}")
        shutdown_deadline = None
        try:
            while True:
                if self.stopping and shutdown_deadline is None:
                    shutdown_deadline = time.monotonic() + self.config.shutdown_s
                    self._stop_reading()
                if shutdown_deadline is not None and (time.monotonic() > shutdown_deadline or not self._unsent()):
                    break
                self.step()
        finally:
            self._shutdown()

    def step(self, wait: float = 0.05) -> None:
        """One turn: acknowledgements and what to publish next (one commit), publish; then wait, read, commit.

        Packets read from a port are committed (fsync) at once, in sequence per board; what a kill
        between the read and the commit loses, the board sends again when the restarted gateway
        asks it to (RESEND, from the number after the newest committed).
        """
        with self.spool.transaction(durable=False):
            self._handle_events()
            self._maintain_session()
            batches = self._choose() if self.ready else []
        self._publish(batches)
        room = len(self.inflight) < self.config.max_inflight
        busy = self.ready and room and any(board.dirty for board in self.boards.values())
        if self.ready and not room:  # PUBACKs are read at the start of a turn: come back for them soon
            wait = min(wait, ACK_POLL_S)
        with self.spool.transaction():
            self._read_links(0 if busy else wait)
        if self.fatal is not None:  # raised only now, with this turn's packets committed
            raise self.fatal
        now = time.monotonic()
        if now - self.last_bounds >= 1.0 or now - self.last_status >= STATUS_EVERY_S:
            with self.spool.transaction():
                if now - self.last_bounds >= 1.0:
                    self.last_bounds = now
                    self._enforce_bounds()
                    if self.ready:
                        self._check_silence()
                if now - self.last_status >= STATUS_EVERY_S:
                    self.last_status = now
                    self._write_status()

    def _stop_reading(self) -> None:
        for board in self.boards.values():
            board.link.close("gateway stopping")
        self.stopped_reading = True

    def _unsent(self) -> bool:
        return bool(self.inflight) or (self.ready and any(self.spool.depth().values()))

    def _shutdown(self) -> None:
        session = self.session
        if session is not None:
            if self.ready:
                mid = session.publish(self.topic("NDEATH"), self._ndeath_payload())
                deadline = time.monotonic() + 1.0
                while mid is not None and time.monotonic() < deadline:
                    event = self._next_event(0.05)
                    if event is not None and event.kind == "puback" and event.detail == mid:
                        break
            session.stop(clean=True)
        for board in self.boards.values():
            board.link.close()
        self.spool.put("broker_connected", 0)
        self.spool.put("pid", 0)
        left = sum(self.spool.depth().values())
        self.spool.close()
        self.metrics.broker_connected.set(0)
        self.log(f"gateway stopped; spool flushed, {left} packet(s) in it for the next start")

    # -- links -> spool ------------------------------------------------------------------------

    def _read_links(self, wait: float) -> None:
        fds = [self.wake_read]
        for board in self.boards.values():
            if not self.stopped_reading and not board.link.up and board.link.open():
                self.log(f"board {board.name}: link {board.link.config.port} open")
            fd = board.link.fileno()
            if fd is not None:
                fds.append(fd)
        try:
            readable, _, _ = select.select(fds, [], [], wait)
        except (OSError, ValueError):
            readable = fds
        if self.wake_read in readable:
            try:
                os.read(self.wake_read, 4096)
            except OSError:
                pass
        received, updates = [], {}
        stamp = now_ms()
        for board in self.boards.values():
            link = board.link
            waiting = link.fileno() in readable
            if not waiting and not link.holding:  # a link holding packets after a gap may release them
                continue
            bad_before = link.decoder.bad_frames
            was_up = link.up
            state = self.tracker.node(board.name)
            before = (state.duplicates, state.reordered, state.restarts, state.gaps)
            got = link.read(waiting)
            if was_up and not link.up:
                self.log(f"board {board.name}: {link.problem}; reopening every {self.config.reconnect_s:g} s")
            counts = {"bad_frames": link.decoder.bad_frames - bad_before}
            values = {}
            for packet, raw, verdict, missing in got:
                if verdict == "duplicate":
                    continue
                received.append((board.name, packet.seq, packet.kind, stamp, missing, verdict == "late", raw))
                counts["packets_in"] = counts.get("packets_in", 0) + 1
                counts["missing"] = counts.get("missing", 0) + missing
                values["newest_seq"] = state.newest
                values["node"] = packet.node
                values["last_seen_ms"] = stamp
                if packet.kind == "BOOT":
                    values["boot"] = dict(packet.fields)
                    values["config_hash"] = packet.fields["config_hash"]
                elif packet.kind == "HEARTBEAT":
                    values["config_hash"] = packet.fields["config_hash"]
                elif packet.kind in ("ACK", "NACK"):
                    self._command_answer(board, packet)
            if got:
                board.last_rx = time.monotonic()
                board.dirty = True
            counts["duplicates"] = state.duplicates - before[0]
            counts["reordered"] = state.reordered - before[1]
            counts["restarts"] = state.restarts - before[2]
            counts["gaps"] = state.gaps - before[3]
            updates[board.name] = (counts, values)
            self._count_received(board.name, counts)
        if received or updates:
            self._commit(received, updates)

    def _commit(self, received: list[tuple], updates: dict) -> None:
        for _ in range(3):
            try:
                self.spool.add(received, updates)
                return
            except sqlite3.OperationalError as exc:  # the disk (or the page limit) is full: oldest out, counted
                self.spool.resume_transaction()
                self.log(f"spool: {exc}; dropping the oldest packets to make room")
                self._count_dropped(self.spool.make_room())
        self.log(f"spool: still full; {len(received)} packet(s) not stored")
        self._count_dropped({name: sum(1 for r in received if r[0] == name) for name in {r[0] for r in received}})

    def _count_received(self, name: str, counts: dict) -> None:
        m = self.metrics
        m.packets_in.labels(name).inc(counts.get("packets_in", 0))
        m.bad_frames.labels(name).inc(counts.get("bad_frames", 0))
        m.missing.labels(name).inc(counts.get("missing", 0))
        m.duplicates.labels(name).inc(counts.get("duplicates", 0))
        m.reordered.labels(name).inc(counts.get("reordered", 0))
        m.restarts.labels(name).inc(counts.get("restarts", 0))

    def _enforce_bounds(self) -> None:
        self.spool.prune_acked(now_ms() - int(self.config.redeliver_s * 1000))
        self._count_dropped(self.spool.enforce_bounds())

    def _count_dropped(self, dropped: dict[str, int]) -> None:
        if not any(dropped.values()):
            return
        for name, count in dropped.items():
            self.metrics.spool_dropped.labels(name).inc(count)
        self.dropped_total += sum(dropped.values())
        self.spool.put("dropped_total", self.dropped_total)
        self.log(f"spool full or too old: dropped {', '.join(f'{n} {c}' for n, c in dropped.items())} (oldest first)")
        if self.ready:
            self._publish_state(self.topic("NDATA"), self._node_metrics())

    # -- the MQTT session ---------------------------------------------------------------------

    def _maintain_session(self) -> None:
        if self.session is not None or self.stopping:
            return
        if time.monotonic() < self.next_connect:
            return
        if self.bd_seq_used:  # a CONNECT reached the broker with the last one: Sparkplug wants the next
            self.bd_seq = self.spool.next_bd_seq()
            self.bd_seq_used = False
        will = spb.build_payload(None, now_ms(), [spb.Metric("bdSeq", spb.UINT64, self.bd_seq)])
        self.session = MqttSession(f"faultline-{self.config.group}-{self.config.edge_node}-{self.instance[:8]}",
                                   self.config.broker_host, self.config.broker_port, self.config.username,
                                   self.config.password, self.topic("NDEATH"), will, self.config.keepalive_s,
                                   self.config.max_inflight, self._wake)
        self.session.start()

    def _next_event(self, wait: float = 0.0) -> Event | None:
        return self.session.next_event(wait) if self.session is not None else None

    def _handle_events(self) -> None:
        delivered: dict[str, list[int]] = {}
        now = now_ms()
        while (event := self._next_event()) is not None:
            if event.kind == "puback":
                entry = self.inflight.pop(event.detail, None)
                if entry is not None:
                    name, row_id, received_ms = entry
                    delivered.setdefault(name, []).append(row_id)
                    self.metrics.publish_latency.observe(max(0, now - received_ms) / 1000)
            elif event.kind == "connected":
                self.bd_seq_used = True
                self._on_connected()
            elif event.kind == "message":
                self._on_message(event.detail, event.payload)
            elif event.kind in ("refused", "unreachable", "disconnected"):
                self.bd_seq_used |= event.kind != "unreachable"
                self._acknowledged(delivered, now)  # before the loss: redelivery takes these PUBACKs back too
                delivered = {}
                self._on_lost(event)
                break
        self._acknowledged(delivered, now)
        if self.probe_until and time.monotonic() >= self.probe_until:
            self.probe_until = 0.0
            self._birth_when_host_online()

    def _acknowledged(self, delivered: dict[str, list[int]], now: int) -> None:
        self.spool.delivered(delivered, now)
        for name, ids in delivered.items():
            self.metrics.packets_published.labels(name).inc(len(ids))

    def _on_connected(self) -> None:
        self.ever_connected = True
        self.outage_logged = False
        self.metrics.broker_connected.set(1)
        self.spool.put("broker_connected", 1)
        self.log(f"broker {self.config.broker_url}: connected (bdSeq {self.bd_seq})")
        topics = [self.topic("NCMD"), self.topic("DCMD", "+"), self.topic("NBIRTH")]
        if self.config.primary_host:  # its retained STATE comes at once; births wait for it to say online
            self.host_online = False
            topics.append(spb.state_topic(self.config.primary_host))
        self.session.subscribe(topics)
        if not self.probed:
            self.probed = True  # once per process: is another gateway serving this edge node id?
            probe = spb.build_payload(None, now_ms(), [spb.Metric("Node Control/Rebirth", spb.BOOLEAN, True),
                                                       spb.Metric("faultline/probe", spb.STRING, self.instance)])
            self.session.publish(self.topic("NCMD"), probe)
            self.probe_until = time.monotonic() + PROBE_S
        else:
            self._birth_when_host_online()

    def _birth_when_host_online(self) -> None:
        if self.host_online:
            self._birth()
        else:
            self.log(f"broker {self.config.broker_url}: waiting for primary host {self.config.primary_host!r} to be online "
                     "(its STATE); spooling")

    def _end_session(self, clean: bool) -> None:
        """Leave the session (clean: an MQTT DISCONNECT, so no Will) and reconnect after reconnect_s."""
        session, self.session = self.session, None
        threading.Thread(target=session.stop, args=(clean,), daemon=True).start()
        self.ready = False
        self.probe_until = 0.0
        self.inflight.clear()
        for board in self.boards.values():
            board.cursor = 0
            board.born = False
            board.dirty = True
        self.metrics.broker_connected.set(0)
        self.spool.put("broker_connected", 0)
        self.next_connect = time.monotonic() + self.config.reconnect_s

    def _on_lost(self, event: Event) -> None:
        was_ready = self.ready
        had_session = self.session.connected_ms > 0
        self._end_session(clean=False)
        if had_session and self.config.redeliver_s:
            self._redeliver()
        detail = str(event.detail)
        if event.kind == "refused" and detail in BAD_CREDENTIALS and not self.ever_connected:
            self.fatal = HostgenError(f"broker {self.config.broker_url} refused user {self.config.username!r}: "
                                      f"{detail.lower()}; fix [broker] username / password (or the mqtt://USER:PASS@ URL)")
            return
        if was_ready or not self.outage_logged:
            self.log(f"broker {self.config.broker_url}: {event.kind} ({detail}); spooling, retrying every "
                     f"{self.config.reconnect_s:g} s")
            self.outage_logged = True

    def _redeliver(self) -> None:
        """A PUBACK says the broker holds a message, not that subscribers got it: a broker that died (SIGKILL, power)
        loses what it held in memory for them. What it acknowledged in the last redeliver_s goes again, flagged."""
        again = self.spool.redeliver(now_ms() - int(self.config.redeliver_s * 1000))
        for name, count in again.items():
            self.metrics.redelivered.labels(name).inc(count)
        if again:
            self.log(f"broker session lost: {sum(again.values())} packet(s) it acknowledged in the last "
                     f"{self.config.redeliver_s:g} s will be published again (packet/resent)")

    def _on_host_state(self, payload: bytes) -> None:
        """Sparkplug 3.0 STATE of the primary host: births and data only while it is online; offline -> NDEATH, leave."""
        state = spb.parse_state(payload)
        if state is None:
            self.log(f"primary host {self.config.primary_host!r}: STATE payload {payload[:60]!r} is not "
                     '{"online": true|false, "timestamp": ms}; ignored')
            return
        online, timestamp = state
        if timestamp < self.host_state_ms:  # an older STATE than one already taken
            return
        self.host_state_ms = timestamp
        self.metrics.primary_host_online.set(1 if online else 0)
        if online and not self.host_online:
            self.host_online = True
            self.log(f"primary host {self.config.primary_host!r} online")
            if self.session is not None and not self.ready and not self.probe_until:
                self._birth()
        elif not online and self.host_online:
            self.host_online = False
            if self.ready:
                self.log(f"primary host {self.config.primary_host!r} offline: NDEATH, disconnecting; spooling until it is "
                         "back")
                self.session.publish(self.topic("NDEATH"), self._ndeath_payload())
                self._end_session(clean=True)

    def _node_metrics(self) -> list[spb.Metric]:
        depth = sum(self.spool.depth().values())
        return [spb.Metric("spool/depth", spb.UINT64, depth), spb.Metric("spool/dropped", spb.UINT64, self.dropped_total),
                spb.Metric("commands/rejected", spb.UINT64, self.commands_rejected)]

    def _ndeath_payload(self) -> bytes:
        return spb.build_payload(None, now_ms(), [spb.Metric("bdSeq", spb.UINT64, self.bd_seq)])

    def _birth(self) -> None:
        """NBIRTH (seq 0), then every board with something to say gets its DBIRTH as its turn comes."""
        metrics = [spb.Metric("bdSeq", spb.UINT64, self.bd_seq), spb.Metric("Node Control/Rebirth", spb.BOOLEAN, False),
                   spb.Metric("gateway/boards", spb.UINT32, len(self.boards))] + self._node_metrics()
        payload = spb.build_payload(self.seq.birth(), now_ms(), metrics, uuid=self.instance)
        if self.session.publish(self.topic("NBIRTH"), payload) is None:
            return
        self.ready = True
        for board in self.boards.values():
            board.born = False
            live = board.link.up and time.monotonic() - board.last_rx < self.config.silent_s
            if live and not self.spool.pending(board.name, board.cursor, 1):  # else its next packet brings the DBIRTH
                self._dbirth(board, None)

    def _publish_state(self, topic: str, metrics: list[spb.Metric]) -> bool:
        payload = spb.build_payload(self.seq.next(), now_ms(), metrics)
        mid = self.session.publish(topic, payload) if self.session is not None else None
        if mid is not None:
            self.inflight[mid] = None
        return mid is not None

    def _dbirth_metrics(self, board: Board, boot_row: SpooledPacket | None, resent: bool) -> list[spb.Metric]:
        metrics = {m.name: m for m in spb.DECLARED}
        metrics.update({m.name: m for m in spb.boot_metrics(board.boot)})
        metrics.update({m.name: m for m in spb.COMMAND_METRICS})
        if boot_row is not None:
            metrics["packet/type"] = spb.Metric("packet/type", spb.STRING, "BOOT")
            metrics["packet/seq"] = spb.Metric("packet/seq", spb.UINT32, boot_row.seq)
            metrics["packet/ticks_ms"] = spb.Metric("packet/ticks_ms", spb.UINT32, decode_packet(boot_row.packet).ticks_ms)
            if boot_row.missing_before:
                metrics["packet/missing_before"] = spb.Metric("packet/missing_before", spb.UINT32, boot_row.missing_before)
            if resent:
                metrics["packet/resent"] = spb.Metric("packet/resent", spb.BOOLEAN, True)
        return list(metrics.values())

    def _dbirth(self, board: Board, boot_row: SpooledPacket | None, resent: bool = False) -> int | None:
        historical = boot_row is not None and boot_row.received_ms < self.session.connected_ms
        payload = spb.build_payload(self.seq.next(), now_ms(), self._dbirth_metrics(board, boot_row, resent),
                                    boot_row.received_ms if boot_row else None, historical)
        mid = self.session.publish(self.topic("DBIRTH", board.name), payload)
        if mid is not None:
            board.born = True
        return mid

    def _ddeath(self, board: Board) -> None:
        if board.born and self._publish_state(self.topic("DDEATH", board.name), []):
            board.born = False

    # -- spool -> broker -----------------------------------------------------------------------

    def _choose(self) -> list[tuple[Board, list[SpooledPacket]]]:
        """The next packets to publish per board, within the in-flight room; marked as sent (see sent_up_to)."""
        room = self.config.max_inflight - len(self.inflight)
        batches = []
        boards = list(self.boards.values())
        self.first_turn = (self.first_turn + 1) % len(boards)  # round robin: no board always last when room is short
        waiting = [board for board in boards[self.first_turn:] + boards[:self.first_turn] if board.dirty]
        share = max(8, room // max(1, len(waiting)))
        for board in waiting:
            if room <= 0:
                break
            limit = min(room, share, 64)
            rows = self.spool.pending(board.name, board.cursor, limit)
            board.dirty = len(rows) == limit
            if rows:
                batches.append((board, rows))
                room -= len(rows)
        # committed before publishing: a kill in between makes the next send flagged as a re-send, never unflagged
        marks = {board.name: rows[-1].id for board, rows in batches if rows[-1].id > board.sent_up_to}
        if marks:
            self.spool.mark_sent(marks)
        return batches

    def _publish(self, batches: list[tuple[Board, list[SpooledPacket]]]) -> None:
        if batches:
            with self.session.batch():
                self._publish_batches(batches)

    def _publish_batches(self, batches: list[tuple[Board, list[SpooledPacket]]]) -> None:
        for board, rows in batches:
            previous, board.sent_up_to = board.sent_up_to, max(board.sent_up_to, rows[-1].id)
            for row in rows:
                mid = self._publish_row(board, row, row.id <= previous) if self.session is not None else None
                if mid is None:
                    board.dirty = True
                    return
                self.inflight[mid] = (board.name, row.id, row.received_ms)
                board.cursor = row.id

    def _publish_row(self, board: Board, row: SpooledPacket, resent: bool) -> int | None:
        packet = decode_packet(row.packet)
        if packet is None:  # cannot happen for a frame the decoder accepted; never publish what is not a packet
            raise HostgenError(f"spool row {row.id} of {board.name} is not a packet: the spool file is damaged")
        if packet.kind == "BOOT":
            self._ddeath(board)
            board.boot = dict(packet.fields)
            board.config_hash = packet.fields["config_hash"]
            return self._dbirth(board, row, resent)
        if packet.kind == "HEARTBEAT":
            new_hash = packet.fields["config_hash"]
            if board.born and board.config_hash is not None and new_hash != board.config_hash:
                self._ddeath(board)  # the board's settings changed: a new birth certificate
            board.config_hash = new_hash
        if not board.born and self._dbirth(board, None) is None:
            return None
        historical = row.received_ms < self.session.connected_ms
        metrics = spb.packet_metrics(packet, row.missing_before, row.late, resent)
        payload = spb.build_payload(self.seq.next(), now_ms(), metrics, row.received_ms, historical)
        return self.session.publish(self.topic("DDATA", board.name), payload)

    def _check_silence(self) -> None:
        now = time.monotonic()
        for board in self.boards.values():
            if board.born and now - board.last_rx > self.config.silent_s and board.cursor >= self._newest_row(board):
                self.log(f"board {board.name}: silent for {self.config.silent_s:g} s; DDEATH")
                self._ddeath(board)

    def _newest_row(self, board: Board) -> int:
        rows = self.spool.db.execute("SELECT MAX(id) FROM packets WHERE device = ?", (board.name,)).fetchone()
        return rows[0] or 0

    # -- commands --------------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if self.config.primary_host and topic == spb.state_topic(self.config.primary_host):
            return self._on_host_state(payload)
        parts = spb.parse_topic(topic)
        if parts is None:
            return
        _, kind, _, device = parts
        try:
            decoded = spb.decode_payload(payload)
        except Exception:  # protobuf's DecodeError, or worse: a malformed payload is a counted rejection
            decoded = None
        if kind == "NBIRTH":
            if decoded is not None and decoded["uuid"] and decoded["uuid"] != self.instance:
                self.metrics.edge_conflicts.inc()
                # a starting gateway yields; two that came up together (neither heard the other's probe): the larger id yields
                if not self.ready or decoded["uuid"] < self.instance:
                    self.ready = False  # leave without an NDEATH: the edge node lives on in the other gateway
                    self.fatal = HostgenError(f"edge node {self.config.edge_node!r} of group {self.config.group!r} is already served "
                                              f"by another gateway (instance {decoded['uuid'][:8]}); give this one another "
                                              "edge_node, or stop the other")
                    return
                self.log(f"another gateway (instance {decoded['uuid'][:8]}) announced edge node {self.config.edge_node}; "
                         "it will stop")
            return
        if kind == "NCMD":
            if decoded is None:
                return self._reject(None, "malformed NCMD payload")
            if decoded["metrics"].get("faultline/probe") is not None:
                if decoded["metrics"]["faultline/probe"] != self.instance and self.ready:
                    self._birth()  # another gateway asks who serves this edge node: answer with our NBIRTH
                return
            if decoded["metrics"].get("Node Control/Rebirth") is True and self.ready:
                self._birth()
            return
        if kind != "DCMD":
            return
        board = self.boards.get(device)
        if board is None:
            return self._reject(None, f"DCMD for unknown board {device!r}")
        if decoded is None:
            return self._reject(board, "malformed DCMD payload (not Sparkplug B protobuf)")
        try:
            commands, rebirth = parse_dcmd(decoded["metrics"])
            if commands and board.key is None:
                raise Rejected(f"no key for board {board.name} in the gateway config ([[board]] key)")
            if commands and board.link.node is None:
                raise Rejected(f"board {board.name} has not been heard from yet: its node id is unknown")
        except Rejected as exc:
            return self._reject(board, str(exc))
        if rebirth and self.ready and board.born:
            self._dbirth(board, None)
        for command in commands:
            self._send_command(board, command)

    def _send_command(self, board: Board, command) -> None:
        board.counter += 1
        self.spool.update_device(board.name, {"commands_sent": 1}, command_counter=board.counter)  # never reused
        try:
            frame = command_frame(board.key, board.link.node, board.counter, command)
        except Rejected as exc:
            return self._reject(board, str(exc))
        if not board.link.write(frame):
            return self._reject(board, f"link to {board.name} is down: {board.link.problem}")
        self.metrics.commands.labels(board.name, "sent", "").inc()

    def _command_answer(self, board: Board, packet) -> None:
        f = packet.fields
        reason = COMMAND_REASONS[f["reason"]] if f["reason"] < len(COMMAND_REASONS) else str(f["reason"])
        result = "ack" if packet.kind == "ACK" else "nack"
        self.metrics.commands.labels(board.name, result, "" if result == "ack" else reason).inc()
        self.spool.update_device(board.name, {"commands_ok" if result == "ack" else "commands_rejected": 1})
        if result == "nack" and f["reason"] == REPLAYED and f["last_counter"] > board.counter:
            board.counter = f["last_counter"]  # the board has seen later counters (a spool from elsewhere): move past
            self.spool.update_device(board.name, command_counter=board.counter)

    def _reject(self, board: Board | None, reason: str) -> None:
        self.commands_rejected += 1
        name = board.name if board else "-"
        self.metrics.commands.labels(name, "rejected", reason[:60]).inc()
        self.log(f"command rejected: {reason}")
        if not self.ready:
            return
        metrics = [spb.Metric("command/result", spb.STRING, "REJECTED"), spb.Metric("command/reason", spb.STRING, reason)]
        if board is not None and board.born:
            self._publish_state(self.topic("DDATA", board.name), metrics)
        else:
            self._publish_state(self.topic("NDATA"), metrics + self._node_metrics())

    # -- status --------------------------------------------------------------------------------------

    def _write_status(self) -> None:
        depth = self.spool.depth()
        self.spool_depth_cache = depth
        for board in self.boards.values():
            self.metrics.spool_depth.labels(board.name).set(depth.get(board.name, 0))
            self.metrics.link_up.labels(board.name).set(1 if board.link.up else 0)
            self.spool.update_device(board.name, link_up=1 if board.link.up else 0)
        self.spool.put("updated_ms", now_ms())
        now = time.monotonic()
        if self.ready and now - self.last_node_report >= NODE_REPORT_EVERY_S:
            self.last_node_report = now
            self._publish_state(self.topic("NDATA"), self._node_metrics())
