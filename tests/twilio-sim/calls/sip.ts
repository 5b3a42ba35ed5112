/**
 * The simulator's SIP stack: one of GoSIP's own SIP engines on loopback with a drachtio-srf app connected
 * to it, shared by the call driver (Twilio's <Dial><Sip> legs out to the relay) and the SIP Domain (the
 * relay's outbound calls in). Each leg's media is an RtpPeer: real G.711 RTP that plays a tone and
 * records what it hears.
 */
import Srf from "drachtio-srf";
import { type Engine, startEngine } from "../../../relay/src/engine/index.ts";
import { type RtpPeer, sdpMediaTarget } from "../../../relay/src/testing/rtp-peer.ts";

const SECRET = "twilio-sim-sip";

export class SimSip {
  private inviteHandler: ((req: Srf.SrfRequest, res: Srf.SrfResponse) => void) | undefined;

  private constructor(
    private readonly engine: Engine,
    readonly srf: Srf,
  ) {}

  static async start(opts: { host?: string; port?: number } = {}): Promise<SimSip> {
    const engine = await startEngine({
      adminPort: 0,
      secret: SECRET,
      sipHost: opts.host ?? "127.0.0.1",
      sipPort: opts.port ?? 0,
      logLevel: "silent",
      // Nobody measures the simulator's first answers; skip the JIT warm-up (a few seconds of CPU).
      warmUp: false,
    });
    const srf = new Srf();
    srf.on("error", () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        (srf.on.bind(srf) as (e: string, fn: (err: unknown) => void) => void)("connect", (err) =>
          err ? reject(err) : resolve(),
        );
        void srf.connect({ host: "127.0.0.1", port: engine.adminPort, secret: SECRET });
      });
    } catch (err) {
      await engine.close();
      throw err;
    }
    const sip = new SimSip(engine, srf);
    srf.invite((req, res) => {
      const handler = sip.inviteHandler;
      if (!handler) {
        res.send(404);
        return;
      }
      handler(req, res);
    });
    return sip;
  }

  get host(): string {
    return "127.0.0.1";
  }

  get port(): number {
    return this.engine.sipPort;
  }

  /** Who answers INVITEs that reach the simulator (the SIP Domain). */
  onInvite(handler: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void {
    this.inviteHandler = handler;
  }

  async close(): Promise<void> {
    this.srf.disconnect();
    await this.engine.close();
  }
}

/** One answered SIP leg with its media, as a test drives it. */
export interface MediaLeg {
  readonly peer: RtpPeer;
  /** The far end's SDP (where our RTP goes). */
  readonly remoteSdp: string;
}

/** Plays `hz` for `ms` on a leg and returns what the leg heard meanwhile. */
export async function talkOn(
  leg: MediaLeg,
  hz: number,
  ms: number,
): Promise<{ sent: number; heardHz: number | undefined; heardPackets: number }> {
  leg.peer.reset();
  const sent = await leg.peer.sendTone(hz, ms, sdpMediaTarget(leg.remoteSdp));
  const r = leg.peer.received();
  return { sent, heardHz: r.frequency, heardPackets: r.audioPackets };
}

/** The digest parameters of an Authorization / Proxy-Authorization header. */
export function digestParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.replace(/^Digest\s+/i, "").matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) {
    if (m[1]) out[m[1].toLowerCase()] = m[3] ?? m[2] ?? "";
  }
  return out;
}

/** The status of a rejected srf createUAC (a SipError carries it), or undefined for other failures. */
export function sipStatusOf(err: unknown): number | undefined {
  if (err && typeof err === "object" && "status" in err) {
    const s = (err as { status: unknown }).status;
    if (typeof s === "number") return s;
  }
  return undefined;
}
