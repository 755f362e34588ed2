"""`hostgen gateway`: run the gateway, or show its status from its spool."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from hostgen.errors import HostgenError
from hostgen.gateway.config import check_id, check_redeliver, default_spool, from_args, load_config


def gateway_config(args):
    overrides = {"spool_dir": Path(args.spool) if args.spool else None, "metrics_port": args.metrics_port,
                 "silent_s": args.silent_s, "spool_max_bytes": args.spool_max_bytes, "spool_max_age_s": args.spool_max_age_s,
                 "max_inflight": args.max_inflight,
                 "redeliver_s": None if args.redeliver_s is None else check_redeliver(args.redeliver_s, "--redeliver-s"),
                 "primary_host": None if args.primary_host is None else check_id(args.primary_host, "--primary-host")}
    if args.config:
        if args.port:
            raise HostgenError("give --config FILE or --port PORT ..., not both (the config lists the boards)")
        return load_config(Path(args.config), overrides)
    if not args.port:
        raise HostgenError("give --config gateway.toml, or --port PORT (repeat it) with --broker URL --group GROUP")
    if not args.group:
        raise HostgenError("give --group GROUP (the Sparkplug group id, e.g. line1)")
    config = from_args(args.port, args.broker, args.group, args.edge_node, args.spool, args.metrics_port or 0, args.key)
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def run_gateway(args, log) -> int:
    from hostgen.gateway.bridge import Gateway

    Gateway(gateway_config(args), log).run()
    return 0


def status(args) -> str:
    from hostgen.gateway.spool import read_status

    if args.spool:
        directory = Path(args.spool)
    elif args.config:
        directory = load_config(Path(args.config)).spool_dir
    else:
        directory = default_spool(args.edge_node) if args.edge_node else None
        if directory is None:
            raise HostgenError("give --spool DIR (or --config FILE, or --edge-node ID) to find the gateway's spool")
    values, boards, depth = read_status(directory)
    if args.json:
        return json.dumps({"gateway": values, "boards": [{**b, "spool_depth": depth.get(b["device"], 0)} for b in boards]},
                          indent=2)
    updated = int(values.get("updated_ms", "0"))
    age = f"{time.time() - updated / 1000:.0f} s ago" if updated else "never"
    state = "running" if values["running"] else "not running"
    broker = "connected" if values.get("broker_connected") == "1" and values["running"] else "not connected"
    lines = [f"gateway {values.get('edge_node', '?')}: {state} (updated {age}); broker {values.get('broker', '?')} {broker}; "
             f"spool {sum(depth.values())} packet(s), {values.get('dropped_total', 0)} dropped"]
    lines.append(f"{'board':<16} {'port':<24} {'link':<5} {'last seen':>10} {'in':>8} {'published':>9} {'spooled':>7} "
                 f"{'missing':>7} {'gaps':>5} {'dups':>5} {'late':>5} {'resets':>6} {'bad':>5} {'cmds ok/no':>10}")
    for b in boards:
        seen = f"{time.time() - b['last_seen_ms'] / 1000:.0f} s ago" if b["last_seen_ms"] else "never"
        lines.append(f"{b['device']:<16} {str(b['port'])[-24:]:<24} {'up' if b['link_up'] and values['running'] else 'down':<5} "
                     f"{seen:>10} {b['packets_in']:>8} {b['published']:>9} {depth.get(b['device'], 0):>7} {b['missing']:>7} "
                     f"{b['gaps']:>5} {b['duplicates']:>5} {b['reordered']:>5} {b['restarts']:>6} {b['bad_frames']:>5} "
                     f"{b['commands_ok']:>5}/{b['commands_rejected']:<4}")
    return "\n".join(lines)
