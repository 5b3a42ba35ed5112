/**
 * The relay's metrics in Prometheus text format (SPEC §10), served on
 * RELAY_METRICS_HOST:RELAY_METRICS_PORT at /metrics. Every value is read at
 * scrape time from the feature that owns it, so nothing is counted twice.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Gauge, Registry } from "prom-client";

/** What the metrics read; each a cheap, synchronous snapshot. */
export interface MetricSources {
  registrations(): number;
  activeCalls(): number;
  rtpengineSessions(): number;
  /** Restarts of the rtpengine child since the relay started. */
  rtpengineRestarts(): number;
  bans(): number;
  outboxDepth(): number;
  edgeConnected(): boolean;
  /** The SIP engine's counters, when the built-in engine runs (absent with drachtio-server). */
  sip?(): { received: number; sent: number; parseErrors: number; dropped: number; transactions: number };
}

export function createMetricsRegistry(src: MetricSources): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge("gosip_registrations", "Registered contacts (live)", src.registrations);
  gauge("gosip_active_calls", "Calls in progress through the relay", src.activeCalls);
  gauge("gosip_rtpengine_sessions", "Media sessions the relay holds in rtpengine", src.rtpengineSessions);
  gauge("gosip_rtpengine_restarts", "Times rtpengine was restarted after dying", src.rtpengineRestarts);
  gauge("gosip_bans", "Source addresses banned by the scanner defence", src.bans);
  gauge("gosip_outbox_depth", "Events waiting for the edge's acknowledgement", src.outboxDepth);
  gauge("gosip_edge_connected", "1 while the link to the edge is up", () => (src.edgeConnected() ? 1 : 0));
  const sip = src.sip;
  if (sip) {
    gauge("gosip_sip_received", "SIP messages received", () => sip().received);
    gauge("gosip_sip_sent", "SIP messages sent", () => sip().sent);
    gauge("gosip_sip_parse_errors", "SIP messages that did not parse", () => sip().parseErrors);
    gauge("gosip_sip_dropped", "SIP messages dropped", () => sip().dropped);
    gauge("gosip_sip_transactions", "Live SIP transactions", () => sip().transactions);
  }
  return registry;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves `registry` at GET /metrics. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) =>
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(`${err instanceof Error ? err.message : err}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
