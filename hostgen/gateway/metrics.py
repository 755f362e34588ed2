"""Prometheus metrics of the gateway (text exposition on 127.0.0.1:<metrics_port>)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hostgen.errors import HostgenError


class GatewayMetrics:
    def __init__(self):
        self.registry = registry = CollectorRegistry()
        board = ["board"]
        self.packets_in = Counter("faultline_packets_received", "packets decoded and spooled", board, registry=registry)
        self.packets_published = Counter("faultline_packets_published", "packets acknowledged by the broker", board,
                                         registry=registry)
        self.bad_frames = Counter("faultline_bad_frames", "frames that failed COBS, CRC, version, type or length", board,
                                  registry=registry)
        self.missing = Counter("faultline_sequence_missing", "board sequence numbers never received", board, registry=registry)
        self.duplicates = Counter("faultline_sequence_duplicates", "packets dropped as duplicates", board, registry=registry)
        self.reordered = Counter("faultline_sequence_reordered", "packets that came after a later one", board, registry=registry)
        self.restarts = Counter("faultline_board_restarts", "BOOT packets after the first", board, registry=registry)
        self.spool_dropped = Counter("faultline_spool_dropped", "packets the bounded spool had to drop", board, registry=registry)
        self.link_up = Gauge("faultline_link_up", "1 while the board's port is open", board, registry=registry)
        self.spool_depth = Gauge("faultline_spool_depth", "packets waiting in the spool for the broker", board, registry=registry)
        self.broker_connected = Gauge("faultline_broker_connected", "1 while connected to the MQTT broker", registry=registry)
        self.redelivered = Counter("faultline_packets_redelivered",
                                   "acknowledged packets published again after the broker session was lost", board,
                                   registry=registry)
        self.primary_host_online = Gauge("faultline_primary_host_online", "1 while the primary host's STATE says online",
                                         registry=registry)
        self.publish_latency = Histogram("faultline_publish_latency_seconds", "packet received to PUBACK",
                                         buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 30, 300),
                                         registry=registry)
        self.commands = Counter("faultline_commands", "commands by result (sent, ack, nack, rejected) and reason",
                                ["board", "result", "reason"], registry=registry)
        self.edge_conflicts = Counter("faultline_edge_node_conflicts", "NBIRTHs of this edge node id from another gateway",
                                      registry=registry)

    def serve(self, port: int) -> None:
        try:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise HostgenError(f"metrics port {port} on 127.0.0.1: {exc.strerror}; give another --metrics-port (or 0 for none)") from None
