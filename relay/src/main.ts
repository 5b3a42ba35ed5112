/**
 * `npm run relay`: the on-prem relay in one process — the built-in SIP engine (or
 * an external drachtio-server with DRACHTIO_HOST), rtpengine as a supervised child
 * (or an external one with RTPENGINE_NG), the relay's libSQL file, the link to the
 * edge, the PBX application and its metrics. Every variable is validated before
 * anything starts; SIGTERM/SIGINT end calls and subscriptions and flush state.
 */
import { mkdir } from "node:fs/promises";
import { parseRelayMessage } from "@gosip/drizzle";
import Srf from "drachtio-srf";
import pino from "pino";
import { z } from "zod";
import { loadRelayConfig } from "./config.ts";
import { closeOnSignal, exitOnStartFailure } from "./engine/cli.ts";
import { ConfigError, loadEngineConfig } from "./engine/config.ts";
import { ENGINE_VERSION, type Engine, startEngine } from "./engine/index.ts";
import { startPbx } from "./pbx/app.ts";
import type { LocalSip } from "./pbx/context.ts";
import { MediaService } from "./pbx/media/media.ts";
import { type RtpengineProcess, startRtpengine } from "./pbx/media/rtpengine-process.ts";
import { createMetricsRegistry, type MetricsServer, serveMetrics } from "./pbx/metrics.ts";
import { DtmfListener, HttpUploader } from "./pbx/recording/index.ts";
import { startSync } from "./pbx/sync/index.ts";
import { openRelayDatabase } from "./pbx/sync/local-db.ts";

const SOFTWARE = "gosip-relay/0.1.0";

const externalSchema = z.object({
  DRACHTIO_HOST: z.string().min(1),
  DRACHTIO_PORT: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return 9022;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        ctx.addIssue({ code: "custom", message: `DRACHTIO_PORT must be a port number 1-65535 (got "${v}")` });
        return z.NEVER;
      }
      return n;
    }),
  DRACHTIO_SECRET: z.string({
    error: "DRACHTIO_SECRET is required with DRACHTIO_HOST: set it to the external drachtio-server's secret",
  }),
});

interface Target {
  host: string;
  port: number;
  secret: string;
}

/** Connects srf; resolves with the engine's SIP host-ports as its connect event reports them. */
function connectApp(target: Target, log: pino.Logger): Promise<{ srf: Srf; hostports: string[] }> {
  const srf = new Srf();
  srf.on("error", (err: Error) => log.error({ err: err.message }, "drachtio connection error"));
  return new Promise((resolve, reject) => {
    (srf.on.bind(srf) as (e: string, fn: (...a: unknown[]) => void) => void)("connect", (err, hostport) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else
        resolve({
          srf,
          hostports: String(hostport ?? "")
            .split(",")
            .filter((h) => h.length > 0),
        });
    });
    void srf.connect({ host: target.host, port: target.port, secret: target.secret });
  });
}

/** The relay's own address for Contact headers and SDP: the first UDP host-port the engine reports. */
function localSip(hostports: readonly string[]): LocalSip {
  const first = hostports.find((h) => h.startsWith("udp/")) ?? hostports[0] ?? "udp/127.0.0.1:5060";
  const m = /^[a-z]+\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(first);
  return {
    host: (m?.[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""),
    port: Number(m?.[2] ?? 5060),
    hostports,
  };
}

async function main(): Promise<void> {
  const cfg = loadRelayConfig();
  let engineTarget: Target;
  let engineOpts: ReturnType<typeof loadEngineConfig> | undefined;
  if (process.env.DRACHTIO_HOST) {
    const r = externalSchema.safeParse(process.env);
    if (!r.success)
      throw new ConfigError(
        r.error.issues.map((i) => i.message),
        "relay (external drachtio-server)",
      );
    engineTarget = { host: r.data.DRACHTIO_HOST, port: r.data.DRACHTIO_PORT, secret: r.data.DRACHTIO_SECRET };
  } else {
    engineOpts = loadEngineConfig();
    engineTarget = { host: "127.0.0.1", port: 0, secret: engineOpts.secret };
  }
  const log = pino({ name: "relay", level: process.env.LOG_LEVEL ?? "info" });

  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(cfg.recordingDir, { recursive: true });
  const { client, db } = await openRelayDatabase(cfg.databaseUrl);

  let engine: Engine | undefined;
  if (engineOpts) {
    engine = await startEngine(engineOpts);
    engineTarget.port = engine.adminPort;
  }
  const { srf, hostports } = await connectApp(engineTarget, log);
  const local = localSip(hostports);

  let rtpengine: RtpengineProcess | undefined;
  const rtpAddress = cfg.rtp.address ?? local.host;
  // rtpengine reports DTMF events here (the in-call recording feature code); only for the child we start.
  const dtmf = cfg.rtp.external ? undefined : await DtmfListener.open();
  if (!cfg.rtp.external) {
    rtpengine = await startRtpengine({
      extraArgs: dtmf?.rtpengineArgs() ?? [],
      interface: rtpAddress,
      ...(cfg.rtp.externalAddress ? { advertiseAddress: cfg.rtp.externalAddress } : {}),
      ...(cfg.rtp.binary ? { binary: cfg.rtp.binary } : {}),
      portMin: cfg.rtp.portMin,
      portMax: cfg.rtp.portMax,
      recordingDir: cfg.recordingDir,
      logger: log,
    });
  }
  const ng = cfg.rtp.external ?? rtpengine?.ng ?? { host: "127.0.0.1", port: 22222 };
  const media = new MediaService({ ng, recordingDir: cfg.recordingDir, logger: log });
  await media.ping();

  const sync = await startSync({
    db,
    log,
    ...(cfg.edgeUrl ? { edgeUrl: cfg.edgeUrl } : {}),
    ...(cfg.relayToken ? { relayToken: cfg.relayToken } : {}),
    software: `${SOFTWARE} (${engine ? `engine ${ENGINE_VERSION}` : "drachtio-server"})`,
    hostports,
  });

  const pbx = await startPbx(
    srf,
    {
      log,
      db,
      directory: sync.directory,
      events: sync.events,
      commands: sync.commands,
      local,
      options: {
        ...(cfg.twilioSipProxy ? { twilioSipProxy: cfg.twilioSipProxy } : {}),
        natExpires: cfg.natExpires,
        keepaliveIntervalMs: cfg.keepaliveIntervalMs,
        recordingDir: cfg.recordingDir,
        ringTimeoutSeconds: cfg.ringTimeoutSeconds,
      },
      now: Date.now,
    },
    {
      media,
      ...(rtpengine ? { rtpengine } : {}),
      ...(engineOpts?.localNetworks ? { trustedNetworks: engineOpts.localNetworks } : {}),
      ...(cfg.edgeUrl && cfg.relayToken
        ? {
            recording: {
              uploader: new HttpUploader({ edgeUrl: cfg.edgeUrl, relayToken: cfg.relayToken }),
              ...(dtmf ? { dtmf } : {}),
            },
          }
        : {}),
    },
  );
  // A recording's local file is kept until the edge acknowledged its recording.ready event.
  sync.events.onAcked((frame) => {
    if (!frame.includes('"recording.ready"')) return;
    const parsed = parseRelayMessage(frame);
    if (parsed.ok && parsed.message.type === "event" && parsed.message.event.kind === "recording.ready") {
      const id = parsed.message.event.recordingId;
      void pbx.recorder
        ?.confirm(id)
        .catch((err: unknown) => log.warn({ err: String(err), id }, "confirm failed"));
    }
  });

  // Calls rtpengine dropped by itself (media timeout, restart) are hung up with a CDR.
  media.on("lost", (rtpCallId: string) => {
    for (const call of pbx.calls.all()) if (call.rtpCallId === rtpCallId) call.hangup("relay");
  });
  media.watch();

  let metrics: MetricsServer | undefined;
  if (cfg.metricsPort > 0) {
    const registry = createMetricsRegistry({
      registrations: () => pbx.registrar.all().length,
      activeCalls: () => pbx.calls.size,
      rtpengineSessions: () => media.activeCalls,
      rtpengineRestarts: () => rtpengine?.restarts ?? 0,
      bans: () => pbx.defence.listBans().length,
      outboxDepth: () => sync.status().outboxDepth,
      edgeConnected: () => sync.status().connected,
      ...(engine
        ? {
            sip: () => {
              const s = (engine as Engine).stats();
              return {
                received: s.stack.received,
                sent: s.stack.sent,
                parseErrors: s.stack.parseErrors,
                dropped: s.stack.dropped,
                transactions: s.stack.serverTransactions + s.stack.clientTransactions,
              };
            },
          }
        : {}),
    });
    metrics = await serveMetrics(registry, cfg.metricsHost, cfg.metricsPort).catch((err: unknown) => {
      log.warn({ err: String(err), port: cfg.metricsPort }, "metrics listener could not start");
      return undefined;
    });
  }

  log.info(
    {
      sip: hostports,
      rtp: { address: rtpAddress, ports: `${cfg.rtp.portMin}-${cfg.rtp.portMax}`, ng },
      edge: cfg.edgeUrl ?? null,
      metricsPort: metrics?.port ?? null,
    },
    "relay started",
  );

  closeOnSignal(async () => {
    log.info("relay stopping");
    await pbx.close();
    await sync.close();
    await metrics?.close();
    srf.disconnect();
    media.close();
    await rtpengine?.stop();
    dtmf?.close();
    await engine?.close();
    client.close();
  });
}

main().catch((err: unknown) => exitOnStartFailure("relay", err));
