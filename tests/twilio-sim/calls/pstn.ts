/**
 * The telephone network behind the simulated Twilio: the parties a <Dial><Number> reaches. Each number
 * behaves as configured (answers after some ringing, is busy, never answers, fails), and every party that
 * was called is kept so a test can check who was dialled with which caller ID. A party that answers has
 * real media: an RtpPeer that plays its tone and records what it hears, so an outbound call placed by a
 * phone through the relay and the SIP Domain can be checked for audio both ways.
 */
import { RtpPeer, sdpMediaTarget } from "../../../relay/src/testing/rtp-peer.ts";

export interface PstnBehaviour {
  /** What the far end does; default "answer". */
  outcome?: "answer" | "busy" | "no-answer" | "failed";
  /** Ringing before it answers or says busy; default 300 ms. */
  ringMs?: number;
  /** Once answered, it hangs up after this long; default: it stays until the other side hangs up. */
  hangupAfterMs?: number;
  /** The tone it plays once answered (its "voice"); default 700 Hz. */
  toneHz?: number;
}

export interface PstnCallInfo {
  number: string;
  callerId: string;
  /** The child call's SID in the simulator's state. */
  callSid: string;
  parentCallSid: string;
}

/** One party the simulator called. */
export class PstnParty {
  readonly info: PstnCallInfo;
  readonly behaviour: Required<Omit<PstnBehaviour, "hangupAfterMs">> & { hangupAfterMs: number | undefined };
  answeredAt: number | undefined;
  endedAt: number | undefined;
  /** Who ended the call once answered. */
  endedBy: "party" | "twilio" | undefined;
  private peerValue: RtpPeer | undefined;
  private remote: string | undefined;
  private endResolve: (() => void) | undefined;
  /** Resolves when the party's call ends (either side). */
  readonly ended: Promise<void>;
  private bridgedResolve: (() => void) | undefined;
  /** Resolves once the party is answered and its media connected to the other leg. */
  readonly bridged: Promise<void>;

  constructor(info: PstnCallInfo, behaviour: PstnBehaviour) {
    this.info = info;
    this.behaviour = {
      outcome: behaviour.outcome ?? "answer",
      ringMs: behaviour.ringMs ?? 300,
      hangupAfterMs: behaviour.hangupAfterMs,
      toneHz: behaviour.toneHz ?? 700,
    };
    this.ended = new Promise<void>((r) => {
      this.endResolve = r;
    });
    this.bridged = new Promise<void>((r) => {
      this.bridgedResolve = r;
    });
  }

  /** The party's media endpoint (opened when it is dialled, so Twilio can offer its SDP). */
  get peer(): RtpPeer | undefined {
    return this.peerValue;
  }

  async openMedia(): Promise<RtpPeer> {
    this.peerValue ??= await RtpPeer.open();
    return this.peerValue;
  }

  /** Where this party's RTP goes (the SDP of the leg it is bridged to). */
  bridgeTo(remoteSdp: string): void {
    this.remote = remoteSdp;
    this.bridgedResolve?.();
  }

  /** Plays the party's tone for `ms` towards the bridged leg and returns what it heard meanwhile. */
  async talk(
    ms: number,
    hz = this.behaviour.toneHz,
  ): Promise<{ sent: number; heardHz: number | undefined; heardPackets: number }> {
    const peer = this.peerValue;
    if (!peer || !this.remote) throw new Error("the party has no media: it was not bridged to a SIP leg");
    peer.reset();
    const sent = await peer.sendTone(hz, ms, sdpMediaTarget(this.remote));
    const r = peer.received();
    return { sent, heardHz: r.frequency, heardPackets: r.audioPackets };
  }

  /** The party hangs up (or Twilio ended the leg). */
  end(by: "party" | "twilio"): void {
    if (this.endedAt !== undefined) return;
    this.endedAt = Date.now();
    this.endedBy = by;
    this.endResolve?.();
  }

  close(): void {
    this.peerValue?.close();
  }
}

/** Numbers and how they behave; the parties that were called. */
export class PstnNetwork {
  /** How a number without its own behaviour acts. */
  defaultBehaviour: PstnBehaviour = { outcome: "answer" };
  private readonly byNumber = new Map<string, PstnBehaviour>();
  readonly parties: PstnParty[] = [];
  private waiters: ((p: PstnParty) => void)[] = [];

  /** Sets how `number` (E.164) behaves when dialled. */
  set(number: string, behaviour: PstnBehaviour): this {
    this.byNumber.set(number, behaviour);
    return this;
  }

  behaviourOf(number: string): PstnBehaviour {
    return this.byNumber.get(number) ?? this.defaultBehaviour;
  }

  /** A new party being dialled (the driver calls this). */
  dial(info: PstnCallInfo): PstnParty {
    const party = new PstnParty(info, this.behaviourOf(info.number));
    this.parties.push(party);
    for (const w of this.waiters.splice(0)) w(party);
    return party;
  }

  /** The next party that gets dialled. */
  nextParty(timeoutMs = 15_000): Promise<PstnParty> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no number was dialled")), timeoutMs);
      this.waiters.push((p) => {
        clearTimeout(t);
        resolve(p);
      });
    });
  }

  close(): void {
    for (const p of this.parties) p.close();
  }
}
