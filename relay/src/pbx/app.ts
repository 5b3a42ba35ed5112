/**
 * The PBX application: one drachtio-srf instance with every feature installed as
 * a middleware chain, in the order a request meets them:
 *
 *   defence (bans → scanner User-Agents → rate limit)
 *   → auth (identify the device or the Twilio trunk, digest challenge)
 *   → REGISTER: registrar · INVITE: calls (B2BUA through rtpengine) · SUBSCRIBE: MWI
 *   · OPTIONS: 200 (keepalives and probes)
 *
 * It runs unchanged on the built-in engine or on drachtio-server; `startPbx` only
 * needs a connected srf, the relay's database, the sync parts (directory, outbox,
 * commands) and media.
 */
import type Srf from "drachtio-srf";
import type { Logger } from "pino";
import { authChain } from "./auth/middleware.ts";
import { type Calls, installCalls, type MediaSupervisor } from "./calls/index.ts";
import type { PbxContext } from "./context.ts";
import { ScannerDefence } from "./defence/defence.ts";
import type { MediaService } from "./media/media.ts";
import { installMwi, type Mwi } from "./mwi/mwi.ts";
import { createRecorder, type DtmfListener, type Recorder, type Uploader } from "./recording/index.ts";
import { Registrar } from "./registrar/registrar.ts";

export interface PbxDeps {
  media: MediaService;
  /** The rtpengine child's supervisor, when the relay started one: its death ends live calls. */
  rtpengine?: MediaSupervisor;
  /** Extra trusted networks (the engine's SIP_LOCAL_NETWORKS). */
  trustedNetworks?: readonly string[];
  /** Call recording: where finished recordings go, and rtpengine's DTMF log for the in-call feature code. */
  recording?: { uploader: Uploader; dtmf?: DtmfListener };
}

export interface Pbx {
  registrar: Registrar;
  defence: ScannerDefence;
  calls: Calls;
  mwi: Mwi;
  /** Undefined when recording is not configured. */
  recorder: Recorder | undefined;
  /** Ends calls and subscriptions, writes pending state; leaves srf and the database to the caller. */
  close(): Promise<void>;
}

/** Installs every feature on `srf` and starts their timers and stored state. */
export async function startPbx(srf: Srf, ctx: Omit<PbxContext, "location">, deps: PbxDeps): Promise<Pbx> {
  const log: Logger = ctx.log;
  const defence = new ScannerDefence(
    { log, db: ctx.db, directory: ctx.directory, events: ctx.events, commands: ctx.commands, now: ctx.now },
    { trustedNetworks: deps.trustedNetworks ?? [] },
  );
  await defence.start();
  const registrar = new Registrar({
    log,
    db: ctx.db,
    directory: ctx.directory,
    events: ctx.events,
    options: ctx.options,
    now: ctx.now,
  });
  await registrar.start(srf);
  const pbxCtx: PbxContext = { ...ctx, location: registrar };

  for (const fn of defence.middleware()) srf.use(fn);
  for (const fn of authChain(pbxCtx, defence)) srf.use(fn);
  srf.use("register", registrar.middleware());
  srf.use("options", (_req, res) => res.send(200));
  const mwi = installMwi(srf, pbxCtx);
  let calls: Calls | undefined;
  const recorder = deps.recording
    ? await createRecorder(pbxCtx, deps.media, deps.recording.uploader, {
        ...(deps.recording.dtmf ? { dtmf: deps.recording.dtmf } : {}),
        lookup: (callId) => calls?.get(callId),
      })
    : undefined;
  // The recorder sees the calls' events: call.answered starts always-on recording, call.ended finishes it.
  calls = installCalls(srf, recorder ? { ...pbxCtx, events: recorder.observe(pbxCtx.events) } : pbxCtx, {
    media: deps.media,
    ...(deps.rtpengine ? { rtpengine: deps.rtpengine } : {}),
  });
  const liveCalls = calls;

  return {
    registrar,
    defence,
    calls: liveCalls,
    mwi,
    recorder,
    async close() {
      await liveCalls.close();
      await recorder?.close();
      await mwi.close();
      await registrar.close();
      await defence.close();
    },
  };
}
