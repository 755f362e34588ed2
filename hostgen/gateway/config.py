"""The gateway's settings: from gateway.toml, or from the command line (--port ... --broker ... --group ...).

Unknown keys and bad values are one-line errors naming the key and the fix. Optional
keys have the defaults below; every board needs a port.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from hostgen.config.toml import read_toml
from hostgen.errors import HostgenError
from hostgen.paths import BUILD_ROOT

SPARKPLUG_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # no '/', '+', '#': they are topic syntax
DEFAULT_BAUD = 115_200


@dataclass(frozen=True)
class BoardConfig:
    name: str  # the Sparkplug device id
    port: str
    baud: int = DEFAULT_BAUD
    key: Path | None = None  # the board's command key (hostgen flash writes it)


@dataclass(frozen=True)
class GatewayConfig:
    group: str
    edge_node: str
    broker_host: str
    broker_port: int
    boards: tuple[BoardConfig, ...]
    spool_dir: Path
    username: str | None = None
    password: str | None = None
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_max_age_s: float = 7 * 24 * 3600.0
    redeliver_s: float = 5.0  # acknowledged packets kept this long, and published again after a broker session is lost
    primary_host: str | None = None  # Sparkplug primary host id: publish only while its STATE says online
    silent_s: float = 10.0  # a board silent this long gets a DDEATH
    metrics_port: int = 0  # Prometheus on 127.0.0.1; 0 = off
    max_inflight: int = 200  # QoS 1 messages awaiting PUBACK
    keepalive_s: int = 10
    reconnect_s: float = 1.0
    shutdown_s: float = 5.0  # on SIGTERM, time given to drain the spool to the broker
    extra: dict = field(default_factory=dict)

    @property
    def broker_url(self) -> str:
        return f"mqtt://{self.broker_host}:{self.broker_port}"


GATEWAY_KEYS = {"group": str, "edge_node": str, "spool": str, "silent_s": (int, float), "metrics_port": int,
                "max_inflight": int, "shutdown_s": (int, float), "primary_host": str}
BROKER_KEYS = {"url": str, "username": str, "password": str, "password_file": str, "keepalive_s": int,
               "reconnect_s": (int, float)}
SPOOL_KEYS = {"max_bytes": int, "max_age_s": (int, float), "redeliver_s": (int, float)}
BOARD_KEYS = {"name": str, "port": str, "baud": int, "key": str}


def default_spool(edge_node: str) -> Path:
    return BUILD_ROOT / "gateway" / edge_node


def parse_broker(url: str) -> tuple[str, int, str | None, str | None]:
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise HostgenError(f"broker URL {url!r}: write mqtt://HOST[:PORT], e.g. mqtt://127.0.0.1:1883")
    try:
        port = parsed.port or 1883
    except ValueError:
        raise HostgenError(f"broker URL {url!r}: the port is not a number 1-65535") from None
    return parsed.hostname, port, unquote(parsed.username) if parsed.username else None, \
        unquote(parsed.password) if parsed.password else None


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not SPARKPLUG_ID.match(value):
        raise HostgenError(f"{what} {value!r}: use 1-64 letters, digits, '_', '.', ':' or '-' (it is part of MQTT topics)")
    return value


def _check_keys(where: str, table: dict, schema: dict) -> None:
    for key, value in table.items():
        if key not in schema:
            raise HostgenError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(schema))})")
        if not isinstance(value, schema[key]) or isinstance(value, bool):
            kind = schema[key].__name__ if isinstance(schema[key], type) else "a number"
            raise HostgenError(f"{where}: key '{key}' must be {kind}, got {value!r}")


def board_name_for_port(port: str, index: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.:-]", "_", Path(port).name)[:64]
    return name or f"board{index}"


def _check_boards(boards: list[BoardConfig], where: str) -> tuple[BoardConfig, ...]:
    if not boards:
        raise HostgenError(f"{where}: no boards; give --port PORT (repeat it) or [[board]] tables with port = \"/dev/ttyUSB0\"")
    names = [b.name for b in boards]
    ports = [b.port for b in boards]
    for listed, what in ((names, "name"), (ports, "port")):
        twice = sorted({v for v in listed if listed.count(v) > 1})
        if twice:
            raise HostgenError(f"{where}: board {what} {twice[0]!r} is given twice; each board needs its own")
    for board in boards:
        if "://" not in board.port and not Path(board.port).exists():
            raise HostgenError(f"board {board.name}: port {board.port} does not exist; check the port name "
                               "(ls /dev/serial/by-id/) or unplugged cable")
        if board.key is not None and not board.key.is_file():
            raise HostgenError(f"board {board.name}: key file {board.key} not found; `hostgen flash --key {board.key}` "
                               "writes one onto the board and here")
    return tuple(boards)


def from_args(ports: list[str], broker: str, group: str, edge_node: str | None, spool: str | None,
              metrics_port: int, keys: list[str] | None = None) -> GatewayConfig:
    host, port, user, password = parse_broker(broker)
    edge = check_id(edge_node or socket.gethostname().split(".")[0], "edge node id")
    keys = keys or []
    if keys and len(keys) != len(ports):
        raise HostgenError(f"{len(keys)} --key for {len(ports)} --port: give one key per port, in the same order, or none")
    boards = [BoardConfig(board_name_for_port(p, i), p, key=Path(keys[i]) if keys else None) for i, p in enumerate(ports)]
    return GatewayConfig(group=check_id(group, "group id"), edge_node=edge, broker_host=host, broker_port=port,
                         boards=_check_boards(boards, "the command line"), username=user, password=password,
                         spool_dir=Path(spool) if spool else default_spool(edge), metrics_port=metrics_port)


def load_config(path: Path, overrides: dict | None = None) -> GatewayConfig:
    """gateway.toml: [gateway], [broker], [spool] and one [[board]] table per board."""
    raw = read_toml(path, "gateway config")
    where = str(path)
    _check_keys(where, raw, {"gateway": dict, "broker": dict, "spool": dict, "board": list})
    gateway, broker, spool = raw.get("gateway", {}), raw.get("broker", {}), raw.get("spool", {})
    _check_keys(f"{where} [gateway]", gateway, GATEWAY_KEYS)
    _check_keys(f"{where} [broker]", broker, BROKER_KEYS)
    _check_keys(f"{where} [spool]", spool, SPOOL_KEYS)
    if "group" not in gateway:
        raise HostgenError(f"{where}: [gateway] needs group = \"line1\" (the Sparkplug group id)")
    host, port, user, password = parse_broker(broker.get("url", "mqtt://127.0.0.1:1883"))
    if "password_file" in broker:
        secret = path.parent / broker["password_file"]
        try:
            password = secret.read_text().strip()
        except OSError as exc:
            raise HostgenError(f"{where}: [broker] password_file {secret}: {exc.strerror}") from None
    boards = []
    for index, table in enumerate(raw.get("board", [])):
        if not isinstance(table, dict) or "port" not in table:
            raise HostgenError(f"{where}: [[board]] number {index + 1} needs port = \"/dev/ttyUSB0\"")
        _check_keys(f"{where} [[board]] {index + 1}", table, BOARD_KEYS)
        name = check_id(table.get("name", board_name_for_port(table["port"], index)), "board name")
        key = (path.parent / table["key"]) if "key" in table else None
        boards.append(BoardConfig(name, table["port"], table.get("baud", DEFAULT_BAUD), key))
    edge = check_id(gateway.get("edge_node", socket.gethostname().split(".")[0]), "edge node id")
    values = dict(
        group=check_id(gateway["group"], "group id"), edge_node=edge, broker_host=host, broker_port=port,
        boards=_check_boards(boards, where), username=broker.get("username", user),
        password=broker.get("password", password),
        spool_dir=(path.parent / gateway["spool"]) if "spool" in gateway else default_spool(edge),
        spool_max_bytes=spool.get("max_bytes", GatewayConfig.spool_max_bytes),
        spool_max_age_s=float(spool.get("max_age_s", GatewayConfig.spool_max_age_s)),
        redeliver_s=float(spool.get("redeliver_s", GatewayConfig.redeliver_s)),
        primary_host=check_id(gateway["primary_host"], "primary host id") if "primary_host" in gateway else None,
        silent_s=float(gateway.get("silent_s", GatewayConfig.silent_s)),
        metrics_port=gateway.get("metrics_port", 0), max_inflight=gateway.get("max_inflight", GatewayConfig.max_inflight),
        keepalive_s=broker.get("keepalive_s", GatewayConfig.keepalive_s),
        reconnect_s=float(broker.get("reconnect_s", GatewayConfig.reconnect_s)),
        shutdown_s=float(gateway.get("shutdown_s", GatewayConfig.shutdown_s)),
    )
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for key in ("spool_max_bytes", "max_inflight", "keepalive_s"):
        if values[key] < 1:
            raise HostgenError(f"{where}: {key} must be at least 1, got {values[key]}")
    check_redeliver(values["redeliver_s"], where)
    return GatewayConfig(**values)


def check_redeliver(seconds: float, where: str) -> float:
    if not 0 <= seconds <= 3600:
        raise HostgenError(f"{where}: redeliver_s {seconds:g} is out of range; give 0-3600 seconds (0: delete on PUBACK; "
                           "more than the broker's autosave_interval to survive a broker SIGKILL)")
    return seconds
