"""`hostgen gateway`: boards' packet streams into an MQTT broker (Sparkplug B), spooled, with commands back."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "bridge boards' packet streams to an MQTT broker (Sparkplug B), spooled, with commands back"


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="gateway.toml: [gateway] group/edge_node/spool, [broker] url/credentials, [[board]] port/name/key")
    parser.add_argument("--port", action="append", help="a board's gateway serial port (repeat for each board)")
    parser.add_argument("--key", action="append", help="with --port: the board's command key file, one per --port")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://[USER:PASS@]HOST[:PORT] (default mqtt://127.0.0.1:1883)")
    parser.add_argument("--group", help="Sparkplug group id, e.g. line1")
    parser.add_argument("--edge-node", help="Sparkplug edge node id of this gateway (default: the host name)")
    parser.add_argument("--spool", help="spool directory (default: build/gateway/<edge node>)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--silent-s", type=float, help="a board silent this long gets a DDEATH (default 10)")
    parser.add_argument("--spool-max-bytes", type=int, help="bound the spool's packet bytes (default 256 MiB)")
    parser.add_argument("--spool-max-age-s", type=float, help="drop spooled packets older than this (default a week)")
    parser.add_argument("--max-inflight", type=int, help="QoS 1 messages awaiting PUBACK (default 200)")
    parser.add_argument("--redeliver-s", type=float,
                        help="keep acknowledged packets this long and publish them again after a broker loss (default 5)")
    parser.add_argument("--primary-host", help="Sparkplug primary host id: publish only while its STATE is online")
    parser.add_argument("--status", action="store_true", help="per board: last seen, packets, gaps, spool depth; broker state")
    parser.add_argument("--json", action="store_true", help="with --status: as JSON")


def run(args) -> int:
    from hostgen.gateway.command import run_gateway, status

    if args.status:
        print(status(args))
        return 0
    return run_gateway(args, arguments.log)
