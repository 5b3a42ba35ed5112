// In-call feature codes from RFC 2833/4733 DTMF. rtpengine sees every telephone-event of every call it
// anchors; started with --dtmf-log-dest=<addr>:<port> it sends one JSON datagram per finished digit, e.g.
//   {"callid":"…","source_tag":"…","tags":["…","…"],"type":"DTMF","timestamp":1796165521,
//    "source_ip":"127.0.0.1","event":10,"duration":100,"volume":10}
// (event numbers as RFC 4733: 0-9, 10 = *, 11 = #, 12-15 = A-D). The listener turns those into digits per
// call and party, and `FeatureCodes` fires when a party keys a code (e.g. *1) within a short window.
// The digits still reach the other party (DTMF passes through); only the relay acts on them.
import { createSocket, type Socket } from "node:dgram";

const EVENTS = "0123456789*#ABCD";

export interface DtmfDigit {
  /** rtpengine's call-id (the B2BUA's call id). */
  callId: string;
  /** The From/To tag of the party that sent it. */
  sourceTag: string;
  digit: string;
  /** When the relay received it, ms. */
  at: number;
}

/** The digit of one rtpengine DTMF log datagram, or undefined for anything else. */
export function parseDtmfLog(text: string, at: number): DtmfDigit | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as { callid?: unknown; source_tag?: unknown; type?: unknown; event?: unknown };
  if (o.type !== undefined && o.type !== "DTMF") return undefined;
  if (typeof o.callid !== "string" || typeof o.event !== "number") return undefined;
  const digit = EVENTS[o.event];
  if (!digit || !Number.isInteger(o.event)) return undefined;
  return { callId: o.callid, sourceTag: typeof o.source_tag === "string" ? o.source_tag : "", digit, at };
}

/** A loopback UDP socket for rtpengine's DTMF log. */
export class DtmfListener {
  readonly #socket: Socket;
  readonly #listeners: ((d: DtmfDigit) => void)[] = [];

  private constructor(
    socket: Socket,
    readonly address: string,
    readonly port: number,
  ) {
    this.#socket = socket;
    socket.on("message", (msg) => {
      const d = parseDtmfLog(msg.toString("utf8"), Date.now());
      if (!d) return;
      for (const l of this.#listeners) l(d);
    });
  }

  /** Binds on loopback (rtpengine runs on the same host); port 0 picks a free one. */
  static open(address = "127.0.0.1", port = 0): Promise<DtmfListener> {
    return new Promise((resolve, reject) => {
      const s = createSocket(address.includes(":") ? "udp6" : "udp4");
      s.once("error", reject);
      s.bind(port, address, () => {
        s.off("error", reject);
        // Datagrams from anywhere else than rtpengine are ignored by content; errors after bind are not fatal.
        s.on("error", () => undefined);
        resolve(new DtmfListener(s, address, s.address().port));
      });
    });
  }

  onDigit(listener: (d: DtmfDigit) => void): void {
    this.#listeners.push(listener);
  }

  /** The rtpengine argument that makes it send its DTMF log here (RtpengineOptions.extraArgs). */
  rtpengineArgs(): string[] {
    const host = this.address.includes(":") ? `[${this.address}]` : this.address;
    return [`--dtmf-log-dest=${host}:${this.port}`];
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

export interface FeatureCodeOptions {
  /** The digits, e.g. "*1". */
  code: string;
  /** All digits of the code within this many ms (default 3000). */
  windowMs?: number;
}

/**
 * Watches each party's digits for a code. A party's buffer holds only its last few digits, and entries for a
 * call go when `forget(callId)` is called at its end, so memory stays bounded by the live calls.
 */
export class FeatureCodes {
  readonly #code: string;
  readonly #windowMs: number;
  readonly #recent = new Map<string, { digits: string; times: number[] }>();

  constructor(
    opts: FeatureCodeOptions,
    private readonly onCode: (callId: string, sourceTag: string) => void,
  ) {
    if (!/^[0-9*#A-D]{1,8}$/.test(opts.code)) throw new Error(`not a DTMF feature code: ${opts.code}`);
    this.#code = opts.code;
    this.#windowMs = opts.windowMs ?? 3000;
  }

  digit(d: DtmfDigit): void {
    const key = `${d.callId}\n${d.sourceTag}`;
    const r = this.#recent.get(key) ?? { digits: "", times: [] };
    const n = this.#code.length;
    r.digits = (r.digits + d.digit).slice(-n);
    r.times = [...r.times, d.at].slice(-n);
    this.#recent.set(key, r);
    const first = r.times[0] ?? d.at;
    if (r.digits === this.#code && d.at - first <= this.#windowMs) {
      // Start over, so "*1*1" toggles twice and "*11" once.
      this.#recent.delete(key);
      this.onCode(d.callId, d.sourceTag);
    }
  }

  forget(callId: string): void {
    for (const key of this.#recent.keys()) if (key.startsWith(`${callId}\n`)) this.#recent.delete(key);
  }
}
