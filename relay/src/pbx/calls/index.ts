// Calls: the INVITE handler of the PBX. It runs after the auth chain (which put the caller on req.locals) and
// decides what kind of call this is:
//   Twilio (trunk) → the extension in the Request-URI → every live contact of that device, in parallel (inbound)
//   a phone → the dial plan: an extension (internal), a feature code, or the PSTN through the Twilio SIP
//             Domain (outbound, with the Domain's credentials, via TWILIO_SIP_PROXY when set)
// then hands it to a `Call` (call.ts). Live calls are kept in a table for metrics, the edge's `call.hangup`
// command and the recording feature; when rtpengine dies every live call is ended cleanly.
import type { RelayEvent, SyncDevice } from "@gosip/drizzle";
import type Srf from "drachtio-srf";
import { callerOf } from "../auth/middleware.ts";
import { CommandError, type PbxContext } from "../context.ts";
import { classifyDialled, type FeatureCode } from "../dialplan/dialplan.ts";
import { contactTarget } from "../registrar/target.ts";
import { type BranchTarget, Call, type CallMedia, type CallSetup } from "./call.ts";
import { partyOf } from "./cdr.ts";

export { Call, type CallMedia } from "./call.ts";

type SrfRequest = Srf.SrfRequest;
type SrfResponse = Srf.SrfResponse;

/** Something that says when rtpengine died (the media module's RtpengineProcess). */
export interface MediaSupervisor {
  on(event: "exit", listener: () => void): unknown;
}

export interface CallsDeps {
  media: CallMedia;
  /** rtpengine's process supervisor: its 'exit' ends every live call (rtpengine lost their sessions). */
  rtpengine?: MediaSupervisor;
  /** Told the relay's own share of each call's setup: INVITE in → first INVITE out, ms (metrics, benchmarks). */
  onSetup?: (ms: number) => void;
}

/** A live call as other features see it. */
export interface LiveCall {
  readonly callId: string;
  /** rtpengine's call-id (for recording). */
  readonly rtpCallId: string;
  readonly direction: "inbound" | "outbound" | "internal";
  readonly startedAt: number;
  readonly answeredAt: number | undefined;
  /** The caller's and the callee's dialogs, once answered. */
  readonly a: Srf.Dialog | undefined;
  readonly b: Srf.Dialog | undefined;
  readonly deviceId: string | null;
  readonly answered: boolean;
  /** Ends the call (BYE both ways, or 503 to an unanswered caller); the CDR follows. */
  hangup(by?: "caller" | "callee" | "relay"): void;
  /** Resolves once the CDR was emitted. */
  ended(): Promise<void>;
}

export interface Calls {
  get(callId: string): LiveCall | undefined;
  all(): readonly LiveCall[];
  readonly size: number;
  /** Ends every live call (relay shutdown) and waits for their CDRs. */
  close(): Promise<void>;
}

function quote(name: string): string {
  return `"${name.replace(/["\\\r\n]/g, "")}"`;
}

/**
 * Installs the INVITE handler (after the auth chain's middleware) and the `call.hangup` command; returns the
 * live-call table.
 */
export function installCalls(srf: Srf, ctx: PbxContext, deps: CallsDeps): Calls {
  const log = ctx.log.child({ component: "calls" });
  const live = new Map<string, Call>();

  const emit = (event: RelayEvent): void => {
    ctx.events
      .emit(event)
      .catch((err: unknown) => log.error({ err: String(err), kind: event.kind }, "event not stored"));
  };

  const localHost = (): string => {
    const h = ctx.local.host.includes(":") ? `[${ctx.local.host}]` : ctx.local.host;
    return `${h}:${ctx.local.port}`;
  };

  const deviceTargets = (device: SyncDevice, headers: Record<string, string>): BranchTarget[] => {
    if (!device.enabled || device.dnd) return [];
    return ctx.location.contactsOf(device.id).map((c) => {
      const t = contactTarget(c);
      const target: BranchTarget = {
        uri: t.uri,
        headers,
        deviceId: device.id,
        sourceAddress: c.sourceAddress,
      };
      if (t.proxy) target.proxy = t.proxy;
      return target;
    });
  };

  const reply = (res: SrfResponse, status: number, reason: string, warning?: string): void => {
    const headers: Record<string, string> = {};
    if (warning) headers.Warning = `399 gosip "${warning.replace(/"/g, "'")}"`;
    try {
      res.send(status, reason, { headers });
    } catch (err) {
      log.warn({ err: String(err) }, "response failed");
    }
  };

  const run = (req: SrfRequest, res: SrfResponse, setup: CallSetup): void => {
    const call = new Call(
      {
        srf,
        media: deps.media,
        log,
        now: () => ctx.now(),
        emit,
        ...(deps.onSetup ? { onSetup: deps.onSetup } : {}),
        onFinished: (c) => {
          if (live.get(c.callId) === c) live.delete(c.callId);
        },
      },
      req,
      res,
      setup,
    );
    live.set(call.callId, call);
    call.start().catch((err: unknown) => {
      log.error({ err: String(err) }, "call setup crashed");
      call.hangup("relay");
    });
  };

  /** A refused call still gets a CDR (a blocked toll-fraud attempt is worth seeing). */
  const refuse = (
    req: SrfRequest,
    res: SrfResponse,
    setup: Omit<CallSetup, "targets">,
    status: number,
    reason: string,
    warning: string,
  ): void => {
    const now = ctx.now();
    const at = new Date(now).toISOString();
    const parties = {
      callId: req.get("Call-ID"),
      direction: setup.direction,
      from: setup.from,
      to: setup.to,
      deviceId: setup.deviceId,
      twilioCallSid: setup.twilioCallSid,
    };
    reply(res, status, reason, warning);
    emit({ kind: "call.started", ...parties, startedAt: at });
    emit({
      kind: "call.ended",
      ...parties,
      startedAt: at,
      answeredAt: null,
      endedAt: at,
      disposition: status === 403 ? "rejected" : "failed",
      sipStatus: status,
      durationSeconds: 0,
      hangupBy: null,
      rtp: null,
      ladder: [
        { t: 0, leg: "a", dir: "in", label: "INVITE" },
        { t: 0, leg: "a", dir: "out", label: `${status} ${reason}`.slice(0, 64) },
      ],
    });
  };

  const feature = (device: SyncDevice, code: FeatureCode, res: SrfResponse): void => {
    // No media for a feature code: the phone shows the reason phrase (and the Warning) as the result.
    if (code === "dnd-on" || code === "dnd-off") {
      const enabled = code === "dnd-on";
      emit({ kind: "device.dnd", deviceId: device.id, enabled });
      reply(
        res,
        480,
        enabled ? "Do Not Disturb On" : "Do Not Disturb Off",
        `do not disturb is now ${enabled ? "on" : "off"}`,
      );
      return;
    }
    const box = ctx.directory.mailbox(device.id);
    const n = box?.newMessages ?? 0;
    reply(
      res,
      480,
      `${n} New Voicemail${n === 1 ? "" : "s"}`,
      `${n} new, ${box?.oldMessages ?? 0} old voicemails`,
    );
  };

  const onInvite = (req: SrfRequest, res: SrfResponse): void => {
    const caller = callerOf(req);
    const settings = ctx.directory.settings();
    const user = Srfu.userOf(req.uri);
    // The edge puts the parent CallSid in X-GoSIP-CallSid (a <Sip> URI header) so relay and edge CDRs merge;
    // X-Twilio-CallSid names only the Dial leg.
    const twilioCallSid = req.get("X-GoSIP-CallSid") || req.get("X-Twilio-CallSid") || null;
    if (!caller) {
      // The auth chain let an unauthenticated INVITE through: a wiring fault, fail closed.
      log.error("INVITE without an authenticated caller");
      reply(res, 403, "Forbidden");
      return;
    }
    const ringTimeoutMs = ctx.options.ringTimeoutSeconds * 1000;

    if (caller.kind === "trunk") {
      const from = req.getParsedHeader("From");
      const fromParty = partyOf(from.uri);
      const device = ctx.directory.byExtension(user);
      const base = {
        direction: "inbound" as const,
        from: fromParty,
        to: device?.extension ?? partyOf(req.get("To")),
        deviceId: null,
        twilioCallSid,
        ringTimeoutMs,
        passFailure: false,
      };
      if (!device) {
        refuse(req, res, base, 404, "Not Found", "no such extension");
        return;
      }
      const display = from.name ? quote(from.name.replace(/^"|"$/g, "")) : quote(fromParty);
      const headers = { From: `${display} <sip:${encodeURIComponent(fromParty)}@${localHost()}>` };
      run(req, res, { ...base, targets: deviceTargets(device, headers) });
      return;
    }

    const device = caller.device;
    const decision = classifyDialled(user, {
      caller: device,
      defaultCountry: settings?.defaultCountry ?? "US",
      byExtension: (e) => ctx.directory.byExtension(e),
    });
    const base = { from: device.extension, deviceId: device.id, twilioCallSid, ringTimeoutMs };
    switch (decision.kind) {
      case "feature":
        feature(device, decision.feature, res);
        return;
      case "refused":
        refuse(
          req,
          res,
          { ...base, direction: "outbound", to: partyOf(req.uri), passFailure: true },
          decision.status,
          REASON_OF[decision.status],
          decision.reason,
        );
        return;
      case "internal": {
        const target = decision.device;
        const headers = {
          From: `${quote(device.name || device.extension)} <sip:${device.extension}@${localHost()}>`,
        };
        run(req, res, {
          ...base,
          direction: "internal",
          to: target.extension,
          passFailure: false,
          targets: deviceTargets(target, headers),
        });
        return;
      }
      case "emergency":
      case "external": {
        const number = decision.kind === "emergency" ? decision.number : decision.e164;
        const domain = settings?.twilioDomain;
        const setup = { ...base, direction: "outbound" as const, to: number, passFailure: true };
        if (!domain) {
          refuse(req, res, setup, 503, "Service Unavailable", "no Twilio SIP Domain configured");
          return;
        }
        const headers: Record<string, string> = {
          From: `${quote(device.name || device.extension)} <sip:${device.sipUsername}@${domain.name}>`,
          To: `<sip:${number}@${domain.name}>`,
          "X-GoSIP-Device": device.id,
        };
        const target: BranchTarget = {
          uri: `sip:${number}@${domain.name}`,
          headers,
          auth: { username: domain.username, password: domain.password },
          deviceId: null,
        };
        const proxy = ctx.options.twilioSipProxy;
        if (proxy) target.proxy = proxy.startsWith("sip:") ? proxy : `sip:${proxy}`;
        // Twilio's <Dial> decides the ring time; the relay only guards against a call that never ends ringing.
        run(req, res, { ...setup, ringTimeoutMs: Math.max(ringTimeoutMs, 120_000), targets: [target] });
        return;
      }
    }
  };

  srf.invite((req, res) => {
    try {
      onInvite(req, res);
    } catch (err) {
      log.error({ err: String(err) }, "INVITE handler failed");
      reply(res, 500, "Server Internal Error");
    }
  });

  ctx.commands.handle("call.hangup", async ({ callId }) => {
    const call = live.get(callId);
    if (!call) throw new CommandError("no such call");
    call.hangup("relay");
    await call.ended();
  });

  deps.rtpengine?.on("exit", () => {
    if (live.size === 0) return;
    log.error({ calls: live.size }, "rtpengine exited: ending its calls");
    for (const call of live.values()) call.hangup("relay");
  });

  return {
    get: (callId) => live.get(callId),
    all: () => [...live.values()],
    get size() {
      return live.size;
    },
    async close() {
      const calls = [...live.values()];
      for (const c of calls) c.hangup("relay");
      await Promise.all(calls.map((c) => c.ended()));
    },
  };
}

const REASON_OF: Record<403 | 404 | 484, string> = {
  403: "Forbidden",
  404: "Not Found",
  484: "Address Incomplete",
};

/** Small URI helpers (srf's parseUri is untyped for our purpose). */
const Srfu = {
  /** The user part of a SIP URI, "" when it has none. */
  userOf(uri: string): string {
    const m = /^sips?:([^@]+)@/i.exec(uri);
    return m?.[1] ?? "";
  },
};
