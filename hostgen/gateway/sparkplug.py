"""Sparkplug B: topics, payloads (protobuf, from sparkplug_b.proto) and the metrics a board's packets become.

One board packet is one DDATA; its metrics are named by role (alert/..., window/...,
summary/..., health/..., command/...) and stamped with the time the gateway received the
packet; packets published late (spooled while the broker was away, or before a restart)
carry is_historical. DBIRTH declares every metric a board can send, with the values of
its last BOOT. `decode_payload` reads a payload back (the tests' and the demo's subscriber).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hostgen.board.packets import ALERT_RULES, COMMAND_OPS, COMMAND_REASONS, DECISIONS, TIERS, Packet
from hostgen.gateway.sparkplug_b_pb2 import Payload

NAMESPACE = "spBv1.0"
# Sparkplug B datatypes (the specification's numbering)
INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FLOAT, DOUBLE, BOOLEAN, STRING = range(1, 13)
LONG_TYPES = (INT64, UINT64)
SIGNED_BITS = {INT8: 8, INT16: 16, INT32: 32, INT64: 64}


def topic(group: str, message: str, edge_node: str, device: str | None = None) -> str:
    return "/".join([NAMESPACE, group, message, edge_node] + ([device] if device else []))


def parse_topic(text: str) -> tuple[str, str, str, str | None] | None:
    """(group, message type, edge node, device or None), or None if not a Sparkplug B topic."""
    parts = text.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        return None
    return parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None


def state_topic(host_id: str) -> str:
    """Sparkplug 3.0: a primary host publishes its STATE here, retained: {"online": bool, "timestamp": ms}."""
    return f"{NAMESPACE}/STATE/{host_id}"


def parse_state(payload: bytes) -> tuple[bool, int] | None:
    """(online, timestamp) of a STATE payload, or None if it is not one."""
    try:
        state = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    online, timestamp = state.get("online"), state.get("timestamp")
    if not isinstance(online, bool) or not isinstance(timestamp, int) or isinstance(timestamp, bool):
        return None
    return online, timestamp


@dataclass(frozen=True)
class Metric:
    name: str
    datatype: int
    value: object  # None: is_null


def _label(table, index):
    return table[index] if 0 <= index < len(table) else str(index)


def packet_metrics(packet: Packet, missing_before: int = 0, late: bool = False, resent: bool = False) -> list[Metric]:
    """The metrics of one board packet (BOOT's go into DBIRTH instead: boot_metrics).

    `resent`: published before without a PUBACK (an outage or a restart came between), so a
    subscriber may already have it: QoS 1 is at least once; (board, packet/seq) tells them apart.
    """
    f = packet.fields
    metrics = [Metric("packet/type", STRING, packet.kind), Metric("packet/seq", UINT32, packet.seq),
               Metric("packet/ticks_ms", UINT32, packet.ticks_ms)]
    if missing_before:
        metrics.append(Metric("packet/missing_before", UINT32, missing_before))
    if late:
        metrics.append(Metric("packet/late", BOOLEAN, True))
    if resent:
        metrics.append(Metric("packet/resent", BOOLEAN, True))
    if packet.kind == "ALERT":
        metrics += [Metric("alert/channel", UINT8, f["channel"]), Metric("alert/rule", STRING, _label(ALERT_RULES, f["rule"])),
                    Metric("alert/raised", BOOLEAN, bool(f["raised"])), Metric("alert/value", INT32, f["value"]),
                    Metric("alert/limit", INT32, f["limit"]), Metric("alert/sample", UINT32, f["sample"])]
    elif packet.kind == "WINDOW":
        metrics += [Metric("window/channel", UINT8, f["channel"]),
                    Metric("window/decision", STRING, _label(DECISIONS, f["decision"])),
                    Metric("window/tier", STRING, _label(TIERS, f["tier"])), Metric("window/rule", INT8, f["rule"]),
                    Metric("window/score", FLOAT, f["score_q8"] / 256), Metric("window/confidence", FLOAT, f["confidence_q8"] / 256),
                    Metric("window/start_sample", UINT32, f["start_sample"])]
        metrics += [Metric(f"window/features/{name}", INT32, f[name]) for name in WINDOW_FEATURES]
    elif packet.kind == "SUMMARY":
        metrics += [Metric("summary/channel", UINT8, f["channel"]), Metric("summary/windows", UINT32, f["windows"]),
                    Metric("summary/first_sample", UINT32, f["first_sample"]), Metric("summary/last_sample", UINT32, f["last_sample"]),
                    Metric("summary/max_score", FLOAT, f["max_score_q8"] / 256), Metric("summary/max_rms", INT32, f["max_rms"]),
                    Metric("summary/max_peak", INT32, f["max_peak"])]
    elif packet.kind == "HEARTBEAT":
        metrics += [Metric(f"health/{name}", UINT32, f[name]) for name in HEALTH_FIELDS]
    elif packet.kind in ("ACK", "NACK"):
        metrics += [Metric("command/result", STRING, packet.kind), Metric("command/counter", UINT32, f["counter"]),
                    Metric("command/op", STRING, COMMAND_OPS.get(f["op"], str(f["op"]))),
                    Metric("command/reason", STRING, _label(COMMAND_REASONS, f["reason"])),
                    Metric("command/last_counter", UINT32, f["last_counter"])]
    return metrics


WINDOW_FEATURES = ("mean", "rms", "peak", "crest_q8", "kurtosis_q8", "zcr")
HEALTH_FIELDS = ("uptime_ms", "heap_free", "heap_used", "loop_p50_us", "loop_p99_us", "loop_max_us", "overruns", "sent",
                 "dropped", "tier2_errors", "config_hash", "flags")
BOOT_FIELDS = ("channels", "rate_hz", "block", "window", "stride", "config_hash", "tier2", "config_source")


def _declare_all() -> list[Metric]:
    fields = {name: 0 for name in (*WINDOW_FEATURES, *HEALTH_FIELDS, "channel", "rule", "raised", "value", "limit", "sample",
                                   "decision", "tier", "score_q8", "confidence_q8", "start_sample", "windows", "first_sample",
                                   "last_sample", "max_score_q8", "max_rms", "max_peak", "counter", "last_counter", "op", "reason")}
    seen: dict[str, Metric] = {}
    for kind in ("ALERT", "WINDOW", "SUMMARY", "HEARTBEAT", "ACK"):
        for metric in packet_metrics(Packet(kind, 0, 0, 0, fields), 1, True, True):
            seen.setdefault(metric.name, Metric(metric.name, metric.datatype, None))
    return list(seen.values())


DECLARED = _declare_all()
COMMAND_METRICS = [Metric("Device Control/Rebirth", BOOLEAN, False), Metric("command/status", BOOLEAN, False)]


def boot_metrics(boot: dict | None) -> list[Metric]:
    boot = boot or {}
    version = f"{boot['major']}.{boot['minor']}.{boot['patch']}" if "major" in boot else None
    return [Metric("boot/firmware", STRING, version)] + [Metric(f"boot/{name}", UINT32, boot.get(name)) for name in BOOT_FIELDS]


def build_payload(seq: int | None, timestamp_ms: int, metrics: list[Metric], metric_ms: int | None = None,
                  historical: bool = False, uuid: str | None = None) -> bytes:
    payload = Payload(timestamp=timestamp_ms)
    if seq is not None:
        payload.seq = seq
    if uuid:
        payload.uuid = uuid
    for metric in metrics:
        m = payload.metrics.add(name=metric.name, datatype=metric.datatype, timestamp=metric_ms or timestamp_ms)
        if historical:
            m.is_historical = True
        value = metric.value
        if value is None:
            m.is_null = True
        elif metric.datatype == BOOLEAN:
            m.boolean_value = bool(value)
        elif metric.datatype == STRING:
            m.string_value = value
        elif metric.datatype == FLOAT:
            m.float_value = value
        elif metric.datatype == DOUBLE:
            m.double_value = value
        elif metric.datatype in LONG_TYPES:
            m.long_value = value & 0xFFFFFFFFFFFFFFFF
        else:
            m.int_value = value & 0xFFFFFFFF  # Sparkplug: signed types as two's complement in the uint32 field
    return payload.SerializeToString()


def metric_value(metric) -> object:
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    value = getattr(metric, kind) if kind else None
    bits = SIGNED_BITS.get(metric.datatype)
    if bits and isinstance(value, int):
        value &= (1 << bits) - 1
        if value >= 1 << (bits - 1):
            value -= 1 << bits
    return value


def decode_payload(data: bytes) -> dict:
    """{'timestamp', 'seq', 'uuid', 'metrics': {name: value}, 'historical': bool, 'metric_timestamp'}."""
    payload = Payload()
    payload.ParseFromString(data)
    metrics = {m.name: metric_value(m) for m in payload.metrics}
    return {"timestamp": payload.timestamp, "seq": payload.seq if payload.HasField("seq") else None,
            "uuid": payload.uuid or None, "metrics": metrics,
            "historical": any(m.is_historical for m in payload.metrics),
            "metric_timestamp": payload.metrics[0].timestamp if payload.metrics else None,
            "datatypes": {m.name: m.datatype for m in payload.metrics}}


class SequenceCounter:
    """The edge node's message sequence: NBIRTH is 0, every later message the next, wrapping at 256."""

    def __init__(self):
        self.value = 0

    def birth(self) -> int:
        self.value = 0
        return 0

    def next(self) -> int:
        self.value = (self.value + 1) % 256
        return self.value
