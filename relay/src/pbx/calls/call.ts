// One B2BUA call from its first INVITE to its CDR: the caller's leg (a), one or more callee branches
// (b1, b2, … when forking to every contact), media anchored in rtpengine, and exactly one ending.
//
//   INVITE in ─► rtpengine offer ─► INVITE to every branch (same SDP) ─► first 2xx wins, others CANCEL
//             ─► rtpengine answer (winner's tag) ─► 200 to the caller ─► bridged (BYE / re-INVITE either way)
//
// Every way out (BYE either side, caller CANCEL, all branches failed, ring timeout, rtpengine error or crash,
// the edge's hang-up command) goes through `finish()`, which runs once: rtpengine's counters, delete, the CDR.
import type { LadderStep, RelayEvent } from "@gosip/drizzle";
import type Srf from "drachtio-srf";
import type { Logger } from "pino";
import type { CallStats } from "../media/media.ts";
import { type CallEnded, type Disposition, dispositionOf, forkOutcome, type HangupBy } from "./cdr.ts";
import { Ladder, REASONS } from "./ladder.ts";

type SrfRequest = Srf.SrfRequest;
type SrfResponse = Srf.SrfResponse;
type Dialog = Srf.Dialog;

/** The part of MediaService the B2BUA uses (an interface so a failing rtpengine can be simulated). */
export interface CallMedia {
  offer(p: {
    callId: string;
    fromTag: string;
    toTag?: string;
    sdp: string;
    sipSourceAddress?: string;
    label?: string;
  }): Promise<{ sdp: string }>;
  answer(p: {
    callId: string;
    fromTag: string;
    toTag: string;
    sdp: string;
    sipSourceAddress?: string;
    label?: string;
  }): Promise<{ sdp: string }>;
  delete(callId: string): Promise<boolean>;
  stats(callId: string): Promise<CallStats>;
}

/** Where one branch of the call goes. */
export interface BranchTarget {
  uri: string;
  /** Next hop (srf's `proxy`): the contact's source address behind NAT, or TWILIO_SIP_PROXY. */
  proxy?: string;
  headers: Record<string, string>;
  /** Digest credentials for a 401/407 from this branch (the Twilio SIP Domain). */
  auth?: { username: string; password: string };
  /** The device this branch rings (inbound/internal), null for the trunk. */
  deviceId: string | null;
  /** Source address of that device's registration, a hint for rtpengine's NAT handling. */
  sourceAddress?: string;
}

export interface CallSetup {
  direction: "inbound" | "outbound" | "internal";
  from: string;
  to: string;
  /** The calling device (outbound, internal); inbound: null until a device answers. */
  deviceId: string | null;
  twilioCallSid: string | null;
  targets: BranchTarget[];
  /** Milliseconds until unanswered branches are canceled (the caller then gets 480). */
  ringTimeoutMs: number;
  /** true: the branch is a trunk whose failure status goes back to the caller as it is. */
  passFailure: boolean;
}

export interface CallDeps {
  srf: Srf;
  media: CallMedia;
  log: Logger;
  now(): number;
  emit(event: RelayEvent): void;
  /** Called once the call is over (after its CDR was emitted). */
  onFinished(call: Call): void;
  /** Told once per call: ms from the INVITE's arrival to the first branch's INVITE handed to the engine. */
  onSetup?: (ms: number) => void;
}

type CreateUac = (
  uri: string,
  opts: Srf.CreateUACOptions,
  callbacks: {
    cbRequest: (err: unknown, req?: SrfRequest) => void;
    cbProvisional: (res: SrfResponse) => void;
  },
) => Promise<Dialog>;

interface Branch {
  leg: string;
  target: BranchTarget;
  req?: SrfRequest;
  /** true once we decided to cancel it (the CANCEL goes out as soon as the INVITE was sent). */
  cancel: boolean;
  done: boolean;
  status?: number;
  dialog?: Dialog;
}

type State = "setup" | "answering" | "answered" | "ended";

function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === "number" ? s : undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export class Call {
  readonly callId: string;
  /** rtpengine's call-id for this call (the caller leg's Call-ID). */
  readonly rtpCallId: string;
  readonly direction: CallSetup["direction"];
  readonly startedAt: number;
  answeredAt: number | undefined;
  /** The caller's dialog once answered. */
  a: Dialog | undefined;
  /** The answering branch's dialog. */
  b: Dialog | undefined;
  /** The device that placed or answered the call. */
  deviceId: string | null;

  private state: State = "setup";
  private readonly ladder: Ladder;
  private readonly branches: Branch[] = [];
  private readonly aTag: string;
  private bTag: string | undefined;
  private offered = false;
  private ringingSent = false;
  private ringTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private readonly log: Logger;
  /** performance.now() when the INVITE arrived, for the relay's share of call setup. */
  private readonly arrived = performance.now();
  private setupReported = false;
  private readonly done: Promise<void>;
  private resolveDone: () => void = () => undefined;

  constructor(
    private readonly deps: CallDeps,
    private readonly req: SrfRequest,
    private readonly res: SrfResponse,
    private readonly setup: CallSetup,
  ) {
    this.callId = req.get("Call-ID");
    this.rtpCallId = this.callId;
    this.aTag = req.getParsedHeader("From").params?.tag ?? "caller";
    this.direction = setup.direction;
    this.deviceId = setup.deviceId;
    this.startedAt = deps.now();
    this.ladder = new Ladder(this.startedAt, deps.now);
    this.log = deps.log.child({ callId: this.callId, direction: setup.direction });
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.ladder.add("a", "in", "INVITE");
    // Attached at once: a CANCEL can arrive while rtpengine is still answering the offer.
    req.on("cancel", () => this.onCallerCancel());
  }

  /** Resolves once the call's CDR was emitted. */
  ended(): Promise<void> {
    return this.done;
  }

  get answered(): boolean {
    return this.state === "answered";
  }

  /** Starts the call: CDR started, rtpengine offer, INVITE to every branch. */
  async start(): Promise<void> {
    this.deps.emit({
      kind: "call.started",
      callId: this.callId,
      direction: this.setup.direction,
      from: this.setup.from,
      to: this.setup.to,
      deviceId: this.setup.deviceId,
      twilioCallSid: this.setup.twilioCallSid,
      startedAt: iso(this.startedAt),
    });
    if (this.setup.targets.length === 0) {
      this.reject(480, "Temporarily Unavailable");
      return;
    }
    if (!this.req.body) {
      // A late offer (INVITE without SDP) would need a different rtpengine flow; phones and Twilio send SDP.
      this.reject(488, "Not Acceptable Here", "an SDP offer is required");
      return;
    }
    let sdp: string;
    try {
      this.offered = true;
      const r = await this.deps.media.offer({
        callId: this.rtpCallId,
        fromTag: this.aTag,
        sdp: this.req.body,
        sipSourceAddress: this.req.source_address,
        label: "caller",
      });
      sdp = r.sdp;
    } catch (err) {
      this.log.error({ err: String(err) }, "rtpengine offer failed");
      this.reject(503, "Service Unavailable", "media relay unavailable");
      return;
    }
    if (this.state !== "setup") {
      // Canceled while rtpengine answered the offer: finish() may have deleted before the session existed.
      this.deps.media.delete(this.rtpCallId).catch(() => undefined);
      return;
    }
    this.ringTimer = setTimeout(() => this.onRingTimeout(), this.setup.ringTimeoutMs);
    this.setup.targets.forEach((target, i) => {
      const leg = this.setup.targets.length === 1 ? "b" : `b${i + 1}`;
      this.startBranch({ leg, target, cancel: false, done: false }, sdp);
    });
  }

  private startBranch(branch: Branch, sdp: string): void {
    this.branches.push(branch);
    const createUac = this.deps.srf.createUAC.bind(this.deps.srf) as unknown as CreateUac;
    const opts: Srf.CreateUACOptions = { localSdp: sdp, headers: { ...branch.target.headers } };
    if (branch.target.proxy) opts.proxy = branch.target.proxy;
    if (branch.target.auth) opts.auth = branch.target.auth;
    createUac(branch.target.uri, opts, {
      cbRequest: (err, req) => {
        if (err || !req) return;
        branch.req = req;
        this.ladder.add(branch.leg, "out", "INVITE");
        if (!this.setupReported) {
          this.setupReported = true;
          this.deps.onSetup?.(performance.now() - this.arrived);
        }
        if (branch.cancel) this.sendCancel(branch);
      },
      cbProvisional: (res) => this.onProvisional(branch, res),
    }).then(
      (dialog) => this.onBranchAnswered(branch, dialog),
      (err: unknown) => this.onBranchFailed(branch, err),
    );
  }

  private sendCancel(branch: Branch): void {
    const req = branch.req;
    if (!req || branch.done) return;
    try {
      req.cancel(() => undefined);
      this.ladder.add(branch.leg, "out", "CANCEL");
    } catch (err) {
      this.log.warn({ err: String(err), leg: branch.leg }, "CANCEL failed");
    }
  }

  private cancelBranches(except?: Branch): void {
    for (const b of this.branches) {
      if (b === except || b.done || b.cancel) continue;
      b.cancel = true;
      this.sendCancel(b);
    }
  }

  private onProvisional(branch: Branch, res: SrfResponse): void {
    if (res.status <= 100) return;
    this.ladder.add(branch.leg, "in", res.status, res.reason);
    if (this.state !== "setup" || branch.cancel) return;
    if (res.status === 183 && res.body) {
      void this.earlyMedia(branch, res);
      return;
    }
    if (!this.ringingSent) {
      this.ringingSent = true;
      this.respond(180, "Ringing");
    }
  }

  /** 183 with SDP (Twilio's ringback, or a phone's early media): answer it in rtpengine and pass it on. */
  private async earlyMedia(branch: Branch, res: SrfResponse): Promise<void> {
    const tag = res.getParsedHeader("To").params?.tag;
    if (!tag) return;
    try {
      const r = await this.deps.media.answer({
        callId: this.rtpCallId,
        fromTag: this.aTag,
        toTag: tag,
        sdp: res.body,
        label: "callee",
      });
      if (this.state !== "setup" || branch.cancel) return;
      this.ringingSent = true;
      this.respond(183, "Session Progress", { body: r.sdp, headers: { "Content-Type": "application/sdp" } });
    } catch (err) {
      this.log.warn({ err: String(err) }, "rtpengine answer for early media failed; ringing without it");
      if (!this.ringingSent && this.state === "setup") {
        this.ringingSent = true;
        this.respond(180, "Ringing");
      }
    }
  }

  private onBranchAnswered(branch: Branch, dialog: Dialog): void {
    branch.done = true;
    branch.status = 200;
    branch.dialog = dialog;
    this.ladder.add(branch.leg, "in", 200, "OK");
    this.ladder.add(branch.leg, "out", "ACK");
    if (this.state !== "setup" || branch.cancel) {
      // A 2xx that raced our CANCEL or another branch's answer: end that dialog at once.
      this.ladder.add(branch.leg, "out", "BYE");
      dialog.destroy({ headers: {} }, () => undefined);
      this.checkSetupFailed();
      return;
    }
    this.state = "answering";
    this.clearRingTimer();
    this.cancelBranches(branch);
    void this.connect(branch, dialog);
  }

  /** The winner's answer through rtpengine, then the 200 to the caller. */
  private async connect(branch: Branch, dialog: Dialog): Promise<void> {
    this.b = dialog;
    this.bTag = dialog.sip.remoteTag;
    if (branch.target.deviceId && this.direction === "inbound") this.deviceId = branch.target.deviceId;
    dialog.on("destroy", () => this.onBye("b"));
    if ((dialog as Dialog & { connected?: boolean }).connected === false) {
      // The callee's BYE came in the same read as its 200 (srf destroyed the dialog before this ran).
      this.onBye("b");
      return;
    }
    let sdp: string;
    try {
      const r = await this.deps.media.answer({
        callId: this.rtpCallId,
        fromTag: this.aTag,
        toTag: this.bTag,
        sdp: dialog.remote.sdp,
        sipSourceAddress: branch.target.sourceAddress,
        label: "callee",
      });
      sdp = r.sdp;
    } catch (err) {
      this.log.error({ err: String(err) }, "rtpengine answer failed");
      this.endDialog(dialog, branch.leg);
      this.b = undefined;
      if (this.state === "answering") this.reject(503, "Service Unavailable", "media relay unavailable");
      return;
    }
    if (this.state !== "answering") {
      // The caller canceled while rtpengine answered: the callee has to go too.
      this.endDialog(dialog, branch.leg);
      return;
    }
    let uas: Dialog;
    let callerGone = false;
    try {
      uas = await new Promise<Dialog>((resolve, reject) => {
        this.deps.srf.createUAS(
          this.req,
          this.res,
          { localSdp: sdp, headers: { "Content-Type": "application/sdp" } },
          (err: unknown, d: Dialog) => {
            if (err) {
              reject(err);
              return;
            }
            // srf handles every frame of one TCP read in one loop: a caller's BYE right behind its ACK can
            // destroy this dialog before a promise continuation runs, so the hang-up is noted here, in the
            // same tick srf made the dialog.
            d.once("destroy", () => {
              callerGone = true;
            });
            resolve(d);
          },
        );
      });
    } catch (err) {
      this.log.warn({ err: String(err) }, "200 to the caller failed");
      this.endDialog(dialog, branch.leg);
      if (this.state === "answering") this.finish(500, "failed", null);
      return;
    }
    this.ladder.add("a", "out", 200, "OK");
    if (this.state !== "answering") {
      // ended (rtpengine lost, hang-up command) in the meantime
      this.endDialog(uas, "a");
      return;
    }
    this.a = uas;
    this.state = "answered";
    this.answeredAt = this.deps.now();
    uas.on("ack", () => this.ladder.add("a", "in", "ACK"));
    uas.on("destroy", () => this.onBye("a"));
    uas.on("modify", (req: SrfRequest, res: SrfResponse) => void this.onReinvite("a", req, res));
    dialog.on("modify", (req: SrfRequest, res: SrfResponse) => void this.onReinvite("b", req, res));
    this.deps.emit({
      kind: "call.answered",
      callId: this.callId,
      deviceId: this.deviceId,
      answeredAt: iso(this.answeredAt),
    });
    this.log.info({ leg: branch.leg }, "call answered");
    if (callerGone) this.onBye("a");
  }

  private onBranchFailed(branch: Branch, err: unknown): void {
    branch.done = true;
    const status = statusOf(err) ?? 503;
    branch.status = status;
    if (statusOf(err) !== undefined) this.ladder.add(branch.leg, "in", status, REASONS[status] ?? "");
    else this.log.warn({ err: String(err), leg: branch.leg }, "branch INVITE failed");
    this.checkSetupFailed();
  }

  /** All branches over without a winner: the caller gets the fork's outcome. */
  private checkSetupFailed(): void {
    if (this.state !== "setup") return;
    if (this.branches.length < this.setup.targets.length) return;
    if (!this.branches.every((b) => b.done)) return;
    const statuses = this.branches.filter((b) => !b.cancel).map((b) => b.status ?? 480);
    let status = forkOutcome(statuses);
    if (this.setup.passFailure) {
      const only = statuses[0] ?? 480;
      // The Domain refusing our credentials is the relay's configuration problem, not the callee's answer.
      status = only === 401 || only === 407 ? 503 : only;
    }
    this.reject(status, REASONS[status] ?? "Call Failed");
  }

  private onRingTimeout(): void {
    this.ringTimer = undefined;
    if (this.state !== "setup") return;
    this.log.info("no answer before the ring timeout");
    this.cancelBranches();
    this.reject(480, "Temporarily Unavailable", "no answer");
  }

  private onCallerCancel(): void {
    this.ladder.add("a", "in", "CANCEL");
    if (this.state !== "setup" && this.state !== "answering") return;
    // The engine has answered the CANCEL with 200 and the INVITE with 487.
    this.ladder.add("a", "out", 487, "Request Terminated");
    this.state = "ended";
    this.clearRingTimer();
    this.cancelBranches();
    const winner = this.branches.find((b) => b.dialog && !b.cancel);
    if (winner?.dialog) this.endDialog(winner.dialog, winner.leg);
    this.finish(487, "canceled", null);
  }

  /** Final non-2xx to the caller, branches canceled, CDR. */
  private reject(status: number, reason: string, warning?: string): void {
    if (this.state === "ended") return;
    this.state = "ended";
    this.clearRingTimer();
    this.cancelBranches();
    const headers: Record<string, string> = {};
    if (warning) headers.Warning = `399 gosip "${warning.replace(/"/g, "'")}"`;
    this.respond(status, reason, { headers });
    this.finish(status, dispositionOf(status), null);
  }

  private respond(
    status: number,
    reason: string,
    opts: { body?: string; headers?: Record<string, string> } = {},
  ): void {
    if (this.res.finalResponseSent) return;
    try {
      this.res.send(status, reason, opts);
      this.ladder.add("a", "out", status, reason);
    } catch (err) {
      this.log.warn({ err: String(err), status }, "response to the caller failed");
    }
  }

  private onBye(from: "a" | "b"): void {
    this.ladder.add(from, "in", "BYE");
    this.ladder.add(from, "out", 200, "OK");
    if (from === "a") this.a = undefined;
    else this.b = undefined;
    if (this.state === "answering" && from === "b") {
      // The callee hung up before the caller got its 200.
      this.state = "ended";
      this.respondFailed(480);
      this.finish(480, "missed", null);
      return;
    }
    if (this.state !== "answered") return;
    this.hangupInternal(from === "a" ? "caller" : "callee");
  }

  private respondFailed(status: number): void {
    this.respond(status, REASONS[status] ?? "Call Failed");
  }

  /**
   * Ends the call as `by` says: every remaining dialog gets a BYE, an unanswered call a CANCEL/503. Used by
   * the edge's hang-up command and when rtpengine is lost.
   */
  hangup(by: HangupBy = "relay"): void {
    if (this.state === "setup" || this.state === "answering") {
      const winner = this.branches.find((b) => b.dialog && !b.cancel);
      if (winner?.dialog) this.endDialog(winner.dialog, winner.leg);
      this.reject(
        by === "relay" ? 503 : 480,
        by === "relay" ? "Service Unavailable" : "Temporarily Unavailable",
      );
      return;
    }
    if (this.state !== "answered") return;
    this.hangupInternal(by);
  }

  private hangupInternal(by: HangupBy): void {
    this.state = "ended";
    if (this.a) this.endDialog(this.a, "a");
    if (this.b) this.endDialog(this.b, this.branches.find((x) => x.dialog === this.b)?.leg ?? "b");
    this.a = undefined;
    this.b = undefined;
    this.finish(200, "answered", by);
  }

  private endDialog(dialog: Dialog, leg: string): void {
    this.ladder.add(leg, "out", "BYE");
    try {
      dialog.destroy({ headers: {} }, () => undefined);
    } catch (err) {
      this.log.debug({ err: String(err), leg }, "BYE not sent (dialog already gone)");
    }
  }

  /** Hold/resume or any new offer from one side: rtpengine offer/answer in that direction, bridged. */
  private async onReinvite(from: "a" | "b", req: SrfRequest, res: SrfResponse): Promise<void> {
    const to = from === "a" ? "b" : "a";
    const other = from === "a" ? this.b : this.a;
    this.ladder.add(from, "in", "INVITE");
    const fromTag = from === "a" ? this.aTag : this.bTag;
    const toTag = from === "a" ? this.bTag : this.aTag;
    const send = (status: number, opts: { body?: string; headers?: Record<string, string> } = {}) => {
      try {
        res.send(status, REASONS[status] ?? "", opts);
        this.ladder.add(from, "out", status, REASONS[status]);
      } catch (err) {
        this.log.warn({ err: String(err) }, "re-INVITE response failed");
      }
    };
    if (!other || !fromTag || !toTag || this.state !== "answered") {
      send(481);
      return;
    }
    if (!req.body) {
      send(488);
      return;
    }
    try {
      const offer = await this.deps.media.offer({
        callId: this.rtpCallId,
        fromTag,
        toTag,
        sdp: req.body,
        sipSourceAddress: req.source_address,
      });
      this.ladder.add(to, "out", "INVITE");
      const answerSdp = await other.modify(offer.sdp);
      this.ladder.add(to, "in", 200, "OK");
      this.ladder.add(to, "out", "ACK");
      const answer = await this.deps.media.answer({ callId: this.rtpCallId, fromTag, toTag, sdp: answerSdp });
      send(200, { body: answer.sdp, headers: { "Content-Type": "application/sdp" } });
    } catch (err) {
      const status = statusOf(err);
      if (status !== undefined) {
        this.ladder.add(to, "in", status, REASONS[status]);
        send(status);
      } else {
        this.log.warn({ err: String(err) }, "re-INVITE could not be bridged");
        send(500);
      }
    }
  }

  private clearRingTimer(): void {
    if (this.ringTimer) clearTimeout(this.ringTimer);
    this.ringTimer = undefined;
  }

  /** Once per call: rtpengine's counters, delete, CDR. */
  private finish(status: number, disposition: Disposition, hangupBy: HangupBy | null): void {
    if (this.finished) return;
    this.finished = true;
    this.state = "ended";
    this.clearRingTimer();
    const endedAt = this.deps.now();
    void this.release().then((rtp) => {
      const durationSeconds =
        this.answeredAt === undefined ? 0 : Math.max(0, Math.round((endedAt - this.answeredAt) / 1000));
      const ladder: LadderStep[] = this.ladder.steps();
      const ended: CallEnded = {
        kind: "call.ended",
        callId: this.callId,
        direction: this.setup.direction,
        from: this.setup.from,
        to: this.setup.to,
        deviceId: this.deviceId,
        twilioCallSid: this.setup.twilioCallSid,
        startedAt: iso(this.startedAt),
        answeredAt: this.answeredAt === undefined ? null : iso(this.answeredAt),
        endedAt: iso(endedAt),
        disposition,
        sipStatus: status,
        durationSeconds,
        hangupBy: disposition === "answered" ? hangupBy : null,
        rtp,
        ladder,
      };
      this.deps.emit(ended);
      this.log.info({ disposition, status, durationSeconds, hangupBy }, "call ended");
      this.deps.onFinished(this);
      this.resolveDone();
    });
  }

  /** rtpengine's packet counts (when it still knows the call), then its session deleted. */
  private async release(): Promise<CallEnded["rtp"]> {
    if (!this.offered) return null;
    let rtp: CallEnded["rtp"] = null;
    try {
      const stats = await this.deps.media.stats(this.rtpCallId);
      const caller = stats.legs.find((l) => l.tag === this.aTag);
      const callee = this.bTag ? stats.legs.find((l) => l.tag === this.bTag) : undefined;
      if (caller && this.answeredAt !== undefined)
        rtp = { toCaller: callee?.in.packets ?? caller.out.packets, toCallee: caller.in.packets };
    } catch {
      // rtpengine no longer knows the call (it restarted) or is down: no counters for this CDR.
    }
    try {
      await this.deps.media.delete(this.rtpCallId);
    } catch (err) {
      this.log.warn({ err: String(err) }, "rtpengine delete failed");
    }
    return rtp;
  }
}
