// Relay entry point: runs the built-in SIP engine and the drachtio-srf application in one process. With
// DRACHTIO_HOST set, the application connects to that external drachtio-server instead and no engine starts.
// (For now the application only answers OPTIONS; the PBX logic arrives in a later issue.)
import Srf from "drachtio-srf";
import { z } from "zod";
import { closeOnSignal, exitOnStartFailure } from "./engine/cli.ts";
import { ConfigError, loadEngineConfig } from "./engine/config.ts";
import { type Engine, startEngine } from "./engine/index.ts";

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

/** The minimal application: answers OPTIONS keepalives/probes with 200. */
function installApp(srf: Srf): void {
  srf.use("options", (_req, res) => res.send(200));
}

function connectApp(target: Target): Promise<Srf> {
  const srf = new Srf();
  installApp(srf);
  srf.on("error", (err: Error) => console.error(`drachtio connection error: ${err.message}`));
  return new Promise((resolve, reject) => {
    srf.on("connect", (err: Error | null) => {
      if (err) reject(err);
      else resolve(srf);
    });
    void srf.connect({ host: target.host, port: target.port, secret: target.secret });
  });
}

async function main(): Promise<void> {
  let engine: Engine | undefined;
  let target: Target;
  if (process.env.DRACHTIO_HOST) {
    const r = externalSchema.safeParse(process.env);
    if (!r.success)
      throw new ConfigError(
        r.error.issues.map((i) => i.message),
        "relay (external drachtio-server)",
      );
    target = { host: r.data.DRACHTIO_HOST, port: r.data.DRACHTIO_PORT, secret: r.data.DRACHTIO_SECRET };
  } else {
    const opts = loadEngineConfig();
    engine = await startEngine(opts);
    target = { host: "127.0.0.1", port: engine.adminPort, secret: opts.secret };
  }
  const srf = await connectApp(target);
  console.log(
    `relay: application connected to ${engine ? "the built-in engine" : target.host}:${target.port}`,
  );
  closeOnSignal(async () => {
    srf.disconnect();
    await engine?.close();
  });
}

main().catch((err: unknown) => exitOnStartFailure("relay", err));
