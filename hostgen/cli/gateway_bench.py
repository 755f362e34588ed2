"""`hostgen gateway-bench`: load and outages through one gateway; figures printed, nothing asserted."""

from __future__ import annotations

from hostgen.cli import arguments

SUMMARY = "load and outages through one gateway: packets/s, latency, CPU, RSS, lost"


def add_arguments(parser) -> None:
    arguments.app(parser)
    parser.add_argument("--boards", type=int, default=50, help="boards on the gateway (default 50)")
    parser.add_argument("--rates", default="1,10", help="multipliers of a board's fault-storm packet rate (default 1,10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per rate (default 20)")
    parser.add_argument("--outages", type=int, default=0, help="broker SIGKILLs mid-run (default 0; the issue's run: 10)")
    parser.add_argument("--outage-s", type=float, default=30.0, help="seconds the broker stays down (default 30)")
    parser.add_argument("--outage-signal", choices=("kill", "term"), default="kill",
                        help="stop the broker with SIGKILL (default) or SIGTERM (it saves its queues)")
    parser.add_argument("--kills", type=int, default=0, help="gateway SIGKILLs mid-run, restarted at once (default 0)")
    parser.add_argument("--max-inflight", type=int, default=200, help="the gateway's QoS 1 window (default 200)")
    arguments.as_json(parser, "the figures as JSON")


def run(args) -> int:
    from hostgen.gateway.bench import bench_command

    print(bench_command(args, arguments.log))
    return 0
