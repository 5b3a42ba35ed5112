// The PBX's media anchor: every call's SDP goes through rtpengine (ng protocol over UDP, rtpengine-client), so
// phones behind NAT and Twilio always reach each other and a call can be recorded. Every ng answer is checked:
// an error result or no answer in time is a MediaError, never a silently broken call.
//
// How the B2BUA uses it (one rtpengine call per B2BUA call, named by the A leg):
//   callId  = the A leg's Call-ID, fromTag = the A leg's From tag (the caller), toTag = the B leg's To tag.
//   1. INVITE from A arrives:   offer({ callId, fromTag, sdp: A's offer, sipSourceAddress: A's source })
//                               -> the SDP to put in the INVITE to B (every forked contact gets the same one).
//   2. 200 (or 183 with SDP) from B:
//                               answer({ callId, fromTag, toTag: B's tag, sdp: B's answer, sipSourceAddress })
//                               -> the SDP for A's 200/183. A later answer with another fork's tag re-points
//                               the session to that fork.
//   3. re-INVITE (hold/resume, or any new offer) from either side: a new offer then answer, with the tags in
//      that request's direction: from A   offer/answer({ fromTag: A's tag, toTag: B's tag, ... })
//                                 from B   offer/answer({ fromTag: B's tag, toTag: A's tag, ... })
//   4. On every way a call ends (BYE either side, CANCEL, a failed or timed-out leg, the B2BUA's own error
//      paths): delete({ callId }). Deleting a call rtpengine no longer knows (never set up, already deleted,
//      lost in an rtpengine restart, timed out) returns false rather than throwing, so it is always safe.
//   Recording: startRecording(callId, fromTag) / stopRecording(callId) during the call (recording-file.ts
//   turns the pcap into a WAV); stats(callId) before delete gives the packet counts for the CDR.
//   Dead calls: with watch() running, a call rtpengine dropped by itself (no RTP for --timeout seconds, or
//   lost in an rtpengine crash) is reported as a 'lost' event, so the B2BUA can hang it up and write its CDR.
//
// Defaults every offer/answer gets: replace origin and session connection (rtpengine's address in SDP), ICE
// removed (phones and Twilio speak plain RTP/AVP), symmetric RTP with endpoint learning (rtpengine sends to
// where media really comes from: no one-way audio behind NAT), and no codec options at all, so G.711 PCMU/PCMA
// and telephone-event (RFC 2833) pass through untouched and nothing is transcoded.
import { EventEmitter } from "node:events";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import rtpengine, { type Client, type NgDict, type NgTarget, type NgValue } from "rtpengine-client";

export type MediaErrorCode = "error" | "timeout" | "protocol";

/** An ng command that failed: rtpengine said error (reason is its error-reason), or did not answer in time. */
export class MediaError extends Error {
  constructor(
    readonly code: MediaErrorCode,
    readonly command: string,
    readonly reason: string,
  ) {
    super(`rtpengine ${command}: ${code === "timeout" ? "no answer (timeout)" : reason}`);
    this.name = "MediaError";
  }
}

export interface OfferParams {
  callId: string;
  /** Tag of the party sending this offer (the From tag of the request that carries it). */
  fromTag: string;
  /** Tag of the other party, for re-offers inside an established call. */
  toTag?: string;
  sdp: string;
  /**
   * Source address of the SIP message that carried the SDP. When the SDP names a private address this one is
   * not (a phone behind NAT), rtpengine starts by sending to the SIP source address instead, until it learns
   * the exact media address from the phone's first RTP packet.
   */
  sipSourceAddress?: string;
  viaBranch?: string;
  /** Free text rtpengine reports back for this party in query ("caller", "callee"). */
  label?: string;
  /** Record the call from its very first packet. */
  record?: boolean;
  /** Two named rtpengine interfaces [this party's, the other's]; not needed with the single interface. */
  direction?: [string, string];
}

export interface AnswerParams extends OfferParams {
  /** Tag of the party that sends the answer. */
  toTag: string;
}

export interface DeleteParams {
  callId: string;
  fromTag?: string;
  toTag?: string;
}

export interface SdpResult {
  sdp: string;
  /** rtpengine's non-fatal warning, if any. */
  warning?: string;
}

/** One direction's counters as rtpengine sees them on one party's port. */
export interface FlowCounters {
  packets: number;
  bytes: number;
}

export interface LegStats {
  tag: string;
  label?: string;
  /** The party this one talks to, by tag. */
  peerTag?: string;
  /** rtpengine's RTP port facing this party (where it sends media to rtpengine). */
  localPort?: number;
  /** Where rtpengine sends this party's media (learned from its packets, or its SDP). */
  endpoint?: { address: string; port: number };
  codec?: string;
  /** RTP that arrived from this party. */
  in: FlowCounters;
  /** RTP rtpengine sent towards this party: what arrived from its peer (rtpengine 10.5 counts input only). */
  out: FlowCounters;
  /** Packets rtpengine refused on this party's port (e.g. not RTP). */
  errors: number;
  lastPacketAt?: number;
}

export interface CallStats {
  callId: string;
  createdAt: number;
  legs: LegStats[];
  totals: { rtp: FlowCounters; rtcp: FlowCounters };
}

export interface RecordingStarted {
  /** The pcap rtpengine writes for this recording (…/pcaps/<call-id>-<random>.pcap). */
  pcapPath?: string;
  /** rtpengine's ports facing the caller, for pcapToWav's `callerPorts` (left channel = caller). */
  callerPorts?: number[];
}

export interface MediaServiceOptions {
  ng: NgTarget;
  /** Milliseconds to wait for each ng answer (default 3000). */
  timeoutMs?: number;
  /** rtpengine's --recording-dir, to locate pcap and metadata files. */
  recordingDir?: string;
  logger?: Logger;
}

const PRIVATE_V4 = [
  /^10\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
  /^169\.254\./,
];

/** The session-level or first media-level IPv4/IPv6 connection address of an SDP. */
export function sdpConnectionAddress(sdp: string): string | undefined {
  const m = /^c=IN IP[46] ([^\s/]+)/m.exec(sdp);
  return m?.[1];
}

function isPrivateAddress(addr: string): boolean {
  if (addr.includes(":")) return /^f[cd]/i.test(addr) || /^fe80:/i.test(addr);
  return PRIVATE_V4.some((re) => re.test(addr));
}

/** rtpengine names pcap files after the URI-escaped call-id (glib's g_uri_escape_string, no reserved chars). */
export function escapeCallIdForFile(callId: string): string {
  let out = "";
  for (const byte of Buffer.from(callId, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function num(v: NgValue | undefined): number {
  return typeof v === "number" ? v : 0;
}
function str(v: NgValue | undefined): string | undefined {
  return typeof v === "string" ? v : Buffer.isBuffer(v) ? v.toString("utf8") : undefined;
}
function dict(v: NgValue | undefined): NgDict | undefined {
  return v !== undefined && typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v) ? v : undefined;
}
function list(v: NgValue | undefined): NgValue[] {
  return Array.isArray(v) ? v : [];
}

interface MediaEvents {
  /** A call offered through this service that rtpengine no longer has, though nobody deleted it. */
  lost: [callId: string];
}

export class MediaService extends EventEmitter<MediaEvents> {
  private readonly client: Client;
  /** Calls offered and not yet deleted, for watch(). */
  private readonly active = new Set<string>();
  private watchTimer: NodeJS.Timeout | undefined;
  private watching = false;
  private readonly ng: NgTarget;
  private readonly timeoutMs: number;
  private readonly recordingDir: string | undefined;
  private readonly log: Logger | undefined;

  constructor(opts: MediaServiceOptions) {
    super();
    this.ng = opts.ng;
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.recordingDir = opts.recordingDir;
    this.log = opts.logger?.child({ component: "media" });
    const local = opts.ng.host.includes(":") ? "::1" : "127.0.0.1";
    this.client = new rtpengine.Client({ localPort: 0, localAddress: local, timeout: this.timeoutMs });
    // The library reports answers that arrive after their timeout as 'error' events; the command already
    // failed with MediaError('timeout'), so this is only worth a log line.
    this.client.on("error", (err: Error) => this.log?.warn({ err: err.message }, "rtpengine ng client"));
  }

  /** Sends one ng command and returns its answer dictionary once result is ok (or pong). */
  private async command(
    name: "ping" | "offer" | "answer" | "delete" | "query" | "startRecording" | "stopRecording",
    args: NgDict,
  ): Promise<NgDict> {
    let res: NgDict;
    try {
      res = await this.client[name](this.ng, args);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/timeout/i.test(msg)) throw new MediaError("timeout", name, msg);
      throw new MediaError("protocol", name, msg);
    }
    const result = str(res.result);
    if (result === "ok" || (name === "ping" && result === "pong")) return res;
    if (result === "error") throw new MediaError("error", name, str(res["error-reason"]) ?? "unknown error");
    throw new MediaError("protocol", name, `unexpected result ${JSON.stringify(result)}`);
  }

  private sdpArgs(p: OfferParams): NgDict {
    const flags: string[] = [];
    const args: NgDict = {
      "call-id": p.callId,
      "from-tag": p.fromTag,
      sdp: p.sdp,
      replace: ["origin", "session-connection"],
      ICE: "remove",
    };
    if (p.toTag) args["to-tag"] = p.toTag;
    if (p.viaBranch) args["via-branch"] = p.viaBranch;
    if (p.label) args.label = p.label;
    if (p.direction) args.direction = p.direction;
    if (p.record) args["record call"] = "yes";
    const advertised = sdpConnectionAddress(p.sdp);
    const src = p.sipSourceAddress;
    if (
      src &&
      advertised &&
      advertised !== src &&
      !/^0\.0\.0\.0$|^::$/.test(advertised) &&
      isPrivateAddress(advertised) &&
      !isPrivateAddress(src)
    ) {
      flags.push("SIP-source-address");
      args["received from"] = [src.includes(":") ? "IP6" : "IP4", src];
    }
    if (flags.length) args.flags = flags;
    return args;
  }

  private sdpResult(res: NgDict, command: string): SdpResult {
    const sdp = str(res.sdp);
    if (!sdp) throw new MediaError("protocol", command, "answer without sdp");
    const warning = str(res.warning);
    return warning ? { sdp, warning } : { sdp };
  }

  /** Offer: the SDP from the party sending an offer in, the SDP to forward to the other party out. */
  async offer(p: OfferParams): Promise<SdpResult> {
    const r = this.sdpResult(await this.command("offer", this.sdpArgs(p)), "offer");
    this.active.add(p.callId);
    return r;
  }

  /** Answer: the answering party's SDP in, the SDP to forward to the offerer out. */
  async answer(p: AnswerParams): Promise<SdpResult> {
    return this.sdpResult(await this.command("answer", this.sdpArgs(p)), "answer");
  }

  /**
   * Ends the session (the whole call unless tags narrow it to one branch). False when rtpengine did not know it,
   * which is not an error: the call may never have reached rtpengine, or rtpengine restarted or timed it out.
   */
  async delete(p: DeleteParams | string): Promise<boolean> {
    const q = typeof p === "string" ? { callId: p } : p;
    // A whole-call delete ends the session even if the command then fails: nothing to watch any more.
    if (!q.fromTag && !q.toTag) this.active.delete(q.callId);
    const args: NgDict = { "call-id": q.callId, "delete delay": 0 };
    if (q.fromTag) args["from-tag"] = q.fromTag;
    if (q.toTag) args["to-tag"] = q.toTag;
    // 'fatal' makes an unknown call an error answer we can tell apart from a real delete.
    args.flags = ["fatal"];
    try {
      await this.command("delete", args);
      return true;
    } catch (err) {
      if (err instanceof MediaError && err.code === "error" && /unknown|not found/i.test(err.reason))
        return false;
      throw err;
    }
  }

  /** rtpengine's full query answer for a call (MediaError 'error' if it does not know the call). */
  async query(callId: string): Promise<NgDict> {
    return this.command("query", { "call-id": callId });
  }

  /** Per-party packet and byte counters of a call, from query. */
  async stats(callId: string): Promise<CallStats> {
    const q = await this.query(callId);
    const legs: LegStats[] = [];
    const tags = dict(q.tags) ?? {};
    for (const [tag, v] of Object.entries(tags)) {
      const t = dict(v);
      if (!t) continue;
      const leg: LegStats = { tag, in: { packets: 0, bytes: 0 }, out: { packets: 0, bytes: 0 }, errors: 0 };
      const label = str(t.label);
      if (label) leg.label = label;
      // 10.5 names the other party in subscriptions (older versions: "in dialogue with").
      const sub = dict(list(t.subscriptions)[0]);
      const peer = str(sub?.tag) ?? str(t["in dialogue with"]);
      if (peer) leg.peerTag = peer;
      for (const mv of list(t.medias)) {
        const media = dict(mv);
        if (!media) continue;
        const codec = str(media.codec);
        if (codec && !leg.codec) leg.codec = codec;
        for (const sv of list(media.streams)) {
          const s = dict(sv);
          if (!s || !list(s.flags).includes("RTP")) continue;
          const stats = dict(s.stats) ?? {};
          leg.in.packets += num(stats.packets);
          leg.in.bytes += num(stats.bytes);
          leg.errors += num(stats.errors);
          if (leg.localPort === undefined && s["local port"] !== undefined)
            leg.localPort = num(s["local port"]);
          const ep = dict(s.endpoint);
          const addr = str(ep?.address);
          if (!leg.endpoint && addr) leg.endpoint = { address: addr, port: num(ep?.port) };
          const last = num(s["last packet"]);
          if (last) leg.lastPacketAt = Math.max(leg.lastPacketAt ?? 0, last);
        }
      }
      legs.push(leg);
    }
    for (const leg of legs) {
      const peer = legs.find((l) => l.tag === leg.peerTag);
      if (peer) leg.out = { ...peer.in };
    }
    const totals = dict(q.totals) ?? {};
    const rtp = dict(totals.RTP) ?? {};
    const rtcp = dict(totals.RTCP) ?? {};
    return {
      callId,
      createdAt: num(q.created),
      legs,
      totals: {
        rtp: { packets: num(rtp.packets), bytes: num(rtp.bytes) },
        rtcp: { packets: num(rtcp.packets), bytes: num(rtcp.bytes) },
      },
    };
  }

  /**
   * Starts recording the whole call (both directions) into a pcap in the recording directory. `callerTag`
   * (the A leg's From tag) lets the result say which packets are the caller's.
   */
  async startRecording(callId: string, callerTag?: string): Promise<RecordingStarted> {
    const before = new Set(await this.pcapsOf(callId));
    await this.command("startRecording", { "call-id": callId });
    const created = (await this.pcapsOf(callId)).filter((f) => !before.has(f));
    const out: RecordingStarted = {};
    const pcap = created[created.length - 1];
    if (pcap) out.pcapPath = pcap;
    if (callerTag) {
      const leg = (await this.stats(callId)).legs.find((l) => l.tag === callerTag);
      if (leg?.localPort !== undefined) out.callerPorts = [leg.localPort];
    }
    return out;
  }

  /**
   * Stops recording. rtpengine then flushes and closes the pcap and moves the metadata file to metadata/;
   * the same happens when the call is deleted while recording.
   */
  async stopRecording(callId: string): Promise<void> {
    await this.command("stopRecording", { "call-id": callId });
  }

  /** Calls offered through this service and not deleted (the relay's "rtpengine sessions" figure). */
  get activeCalls(): number {
    return this.active.size;
  }

  /**
   * Checks every intervalMs that rtpengine still has each active call and emits 'lost' for those it dropped.
   * rtpengine not answering is not a loss (it may be restarting; its calls show up as lost once it is back).
   */
  watch(intervalMs = 15_000): void {
    if (this.watchTimer) return;
    this.watchTimer = setInterval(() => {
      if (this.watching) return;
      this.watching = true;
      this.checkActive()
        .catch((err: Error) => this.log?.warn({ err: err.message }, "media watch"))
        .finally(() => {
          this.watching = false;
        });
    }, intervalMs);
    this.watchTimer.unref();
  }

  /** One watch() pass, callable directly (tests, or right after an rtpengine restart). */
  async checkActive(): Promise<string[]> {
    const lost: string[] = [];
    const ids = [...this.active];
    // A few queries in flight at a time: cheap for rtpengine even with a thousand calls.
    for (let i = 0; i < ids.length; i += 16) {
      await Promise.all(
        ids.slice(i, i + 16).map(async (id) => {
          try {
            await this.query(id);
          } catch (err) {
            if (err instanceof MediaError && err.code === "error" && this.active.delete(id)) {
              lost.push(id);
              this.emit("lost", id);
            }
          }
        }),
      );
    }
    return lost;
  }

  /** Resolves when rtpengine answers ping. */
  async ping(): Promise<void> {
    await this.command("ping", {});
  }

  /** The call's pcap files in the recording directory, oldest first. */
  async pcapsOf(callId: string): Promise<string[]> {
    if (!this.recordingDir) return [];
    const dir = join(this.recordingDir, "pcaps");
    const prefix = `${escapeCallIdForFile(callId)}-`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    // <prefix><16 hex>.pcap: the exact shape keeps call "a" from matching call "a-b"'s files.
    const mine = names.filter(
      (n) => n.startsWith(prefix) && /^[0-9a-f]{16}\.pcap$/.test(n.slice(prefix.length)),
    );
    const withTimes = await Promise.all(
      mine.map(async (n) => ({ path: join(dir, n), t: (await stat(join(dir, n))).mtimeMs })),
    );
    return withTimes.sort((a, b) => a.t - b.t).map((x) => x.path);
  }

  close(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    this.client.close();
  }
}
