// Message waiting indication (RFC 6665 subscriptions to RFC 3842's message-summary package): a phone
// subscribes to its own mailbox, the relay answers 200 and sends a NOTIFY with the voicemail counts right
// away, again whenever the edge's `mwi` command (or a configuration snapshot) changes them, on every refresh,
// and a final "terminated" NOTIFY when the phone unsubscribes, the subscription lapses or the device goes.
//
// The SUBSCRIBE arrives here after the auth middleware (digest challenge, req.locals.caller); in-dialog
// refreshes and unsubscribes go straight to their srf Dialog (srf's dialog router runs before any middleware),
// so they are bound to the dialog the authenticated SUBSCRIBE created.
import type { MailboxCount, SyncDevice } from "@gosip/drizzle";
import Srf from "drachtio-srf";
import { callerOf } from "../auth/middleware.ts";
import type { PbxContext } from "../context.ts";
import {
  acceptsMessageSummary,
  eventType,
  grantedExpires,
  MESSAGE_SUMMARY_EVENT,
  MESSAGE_SUMMARY_TYPE,
  messageSummaryBody,
  type VoiceCounts,
} from "./message-summary.ts";

export interface MwiOptions {
  /** Shortest subscription granted (seconds); shorter requests are raised to it. Default 60. */
  minExpires?: number;
  /** Longest subscription granted (seconds). Default 3600. */
  maxExpires?: number;
  /** Subscriptions kept per device; a new one beyond this ends the oldest (a phone that re-subscribes after every reboot). Default 8. */
  maxPerDevice?: number;
}

/** What installMwi gives the rest of the relay. */
export interface Mwi {
  /** Live subscriptions (metrics, tests). */
  subscriptionCount(deviceId?: string): number;
  /** Sends a device's current counts to all its subscriptions (after something other than a command changed them). */
  refresh(deviceId: string): void;
  /** Ends every subscription with a terminating NOTIFY (relay shutdown); resolves when they were answered or failed. */
  close(): Promise<void>;
}

export type MwiContext = Pick<PbxContext, "log" | "directory" | "commands" | "local" | "now">;

/** The part of srf's Dialog a notifier uses (srf's type declarations do not describe SUBSCRIBE dialogs). */
interface NotifierDialog {
  readonly id: string;
  request(opts: {
    method: "NOTIFY";
    headers: Record<string, string>;
    body?: string;
  }): Promise<{ status: number }>;
  on(event: "subscribe", listener: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): unknown;
  on(event: "unsubscribe" | "destroy", listener: () => void): unknown;
}

type DialogConstructor = new (
  srf: Srf,
  type: "uas",
  opts: { req: Srf.SrfRequest; res: Srf.SrfResponse; sent: unknown },
) => NotifierDialog;

interface Subscription {
  readonly dialog: NotifierDialog;
  readonly deviceId: string;
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
  /** A NOTIFY is on its way; `dirty` asks for another with the newest counts once it is answered. */
  sending: Promise<void> | undefined;
  dirty: boolean;
  ended: boolean;
}

/** The authenticated device the auth middleware put on the request, if any. */
function callerDevice(req: Srf.SrfRequest): SyncDevice | undefined {
  const caller = callerOf(req);
  return caller?.kind === "device" ? caller.device : undefined;
}

function header(req: Srf.SrfRequest, name: string): string | undefined {
  return req.has(name) ? req.get(name) : undefined;
}

/**
 * Answers the SUBSCRIBE with 200 and builds srf's Dialog for it. srf's createUAS would answer a SUBSCRIBE with
 * 202, which RFC 6665 deprecates (notifiers SHOULD NOT send it); the Dialog it builds is the same one.
 */
function acceptSubscribe(
  srf: Srf,
  req: Srf.SrfRequest,
  res: Srf.SrfResponse,
  headers: Record<string, string>,
): Promise<NotifierDialog> {
  return new Promise((resolve, reject) => {
    res.send(200, "OK", { headers }, (err: unknown, sent: unknown) => {
      if (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      try {
        const DialogClass = Srf.Dialog as unknown as DialogConstructor;
        const dialog = new DialogClass(srf, "uas", { req, res, sent });
        (srf as unknown as { addDialog(d: NotifierDialog): void }).addDialog(dialog);
        resolve(dialog);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

/** Installs the SUBSCRIBE handler for message-summary and the `mwi` command handler. */
export function installMwi(srf: Srf, ctx: MwiContext, options: MwiOptions = {}): Mwi {
  const minExpires = options.minExpires ?? 60;
  const maxExpires = options.maxExpires ?? 3600;
  const maxPerDevice = options.maxPerDevice ?? 8;
  const log = ctx.log.child({ feature: "mwi" });
  const byDevice = new Map<string, Set<Subscription>>();
  /** Counts from `mwi` commands, newer than the directory's until the directory's own value changes. */
  const fromCommands = new Map<string, MailboxCount>();
  /** What the directory said for each device when last looked at (to notice a snapshot that changed it). */
  const directorySaid = new Map<string, string>();

  const countsOf = (deviceId: string): VoiceCounts => {
    const m = fromCommands.get(deviceId) ?? ctx.directory.mailbox(deviceId);
    return { newMessages: m?.newMessages ?? 0, oldMessages: m?.oldMessages ?? 0 };
  };

  const accountOf = (deviceId: string): string => {
    const ext = ctx.directory.byId(deviceId)?.extension ?? "unknown";
    const host = ctx.local.host.includes(":") ? `[${ctx.local.host}]` : ctx.local.host;
    return `sip:${ext}@${host}`;
  };

  const forget = (sub: Subscription): void => {
    sub.ended = true;
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = undefined;
    const set = byDevice.get(sub.deviceId);
    set?.delete(sub);
    if (set?.size === 0) byDevice.delete(sub.deviceId);
  };

  /** Drops a subscription whose phone no longer answers (srf would otherwise keep its Dialog forever). */
  const drop = (sub: Subscription, why: string): void => {
    if (sub.ended) return;
    log.info({ deviceId: sub.deviceId, why }, "MWI subscription dropped");
    forget(sub);
    (srf as unknown as { removeDialog(d: NotifierDialog): void }).removeDialog(sub.dialog);
  };

  const notifyOnce = async (sub: Subscription, state: string): Promise<number> => {
    const res = await sub.dialog.request({
      method: "NOTIFY",
      headers: {
        Event: MESSAGE_SUMMARY_EVENT,
        "Subscription-State": state,
        "Content-Type": MESSAGE_SUMMARY_TYPE,
      },
      body: messageSummaryBody(countsOf(sub.deviceId), accountOf(sub.deviceId)),
    });
    return res.status;
  };

  /** Sends the current counts; coalesces changes that arrive while a NOTIFY is being answered. */
  const push = (sub: Subscription): void => {
    if (sub.ended) return;
    if (sub.sending) {
      sub.dirty = true;
      return;
    }
    sub.sending = (async () => {
      do {
        sub.dirty = false;
        const remaining = Math.max(1, Math.ceil((sub.expiresAt - ctx.now()) / 1000));
        let status: number;
        try {
          status = await notifyOnce(sub, `active;expires=${remaining}`);
        } catch (err) {
          drop(sub, `NOTIFY failed: ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
        if (status >= 300) {
          // 481: the phone forgot the subscription; 408/5xx: it is gone. Either way nobody sees the lamp.
          drop(sub, `NOTIFY answered ${status}`);
          return;
        }
      } while (sub.dirty && !sub.ended);
    })().finally(() => {
      sub.sending = undefined;
    });
  };

  /** Final NOTIFY (Subscription-State: terminated), then forgets the subscription. */
  const terminate = async (sub: Subscription, reason: string | undefined): Promise<void> => {
    if (sub.ended) return;
    forget(sub);
    await sub.sending;
    try {
      // srf removes the Dialog itself once this NOTIFY is answered.
      await notifyOnce(sub, reason ? `terminated;reason=${reason}` : "terminated");
    } catch (err) {
      log.debug({ deviceId: sub.deviceId, err }, "terminating MWI NOTIFY failed");
      (srf as unknown as { removeDialog(d: NotifierDialog): void }).removeDialog(sub.dialog);
    }
  };

  const arm = (sub: Subscription, expires: number): void => {
    sub.expiresAt = ctx.now() + expires * 1000;
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = setTimeout(() => void terminate(sub, "timeout"), expires * 1000);
    sub.timer.unref();
  };

  const subscribe = async (req: Srf.SrfRequest, res: Srf.SrfResponse): Promise<void> => {
    if (eventType(header(req, "Event")) !== MESSAGE_SUMMARY_EVENT) {
      res.send(489, "Bad Event", { headers: { "Allow-Events": MESSAGE_SUMMARY_EVENT } });
      return;
    }
    if (!acceptsMessageSummary(header(req, "Accept"))) {
      res.send(406, "Not Acceptable", { headers: { Accept: MESSAGE_SUMMARY_TYPE } });
      return;
    }
    // Fail closed: only an authenticated, enabled device subscribes, and only to its own mailbox (by its SIP
    // username or its extension). Any other target gets the same 403, so nothing reveals which mailboxes exist.
    const caller = callerDevice(req);
    const device = caller ? ctx.directory.byId(caller.id) : undefined;
    const target = Srf.parseUri(req.uri)?.user;
    if (!device?.enabled || (target !== device.sipUsername && target !== device.extension)) {
      res.send(403, "Forbidden", {});
      return;
    }
    const expires = grantedExpires(header(req, "Expires"), minExpires, maxExpires);
    const dialog = await acceptSubscribe(srf, req, res, { Expires: String(expires) });
    const sub: Subscription = {
      dialog,
      deviceId: device.id,
      expiresAt: ctx.now() + expires * 1000,
      timer: undefined,
      sending: undefined,
      dirty: false,
      ended: false,
    };
    dialog.on("subscribe", (refresh, refreshRes) => {
      if (sub.ended) {
        refreshRes.send(481, "Subscription Does Not Exist", {});
        return;
      }
      const granted = grantedExpires(header(refresh, "Expires"), minExpires, maxExpires);
      refreshRes.send(200, "OK", { headers: { Expires: String(granted) } });
      arm(sub, granted);
      push(sub);
    });
    // srf has answered the unsubscribe (Expires: 0) already.
    dialog.on("unsubscribe", () => void terminate(sub, undefined));
    dialog.on("destroy", () => forget(sub));

    if (expires === 0) {
      // A fetch: one NOTIFY with the state, and the subscription ends with it (RFC 6665 §4.2.1.4).
      await terminate(sub, "timeout");
      return;
    }
    if (!directorySaid.has(device.id))
      directorySaid.set(device.id, JSON.stringify(ctx.directory.mailbox(device.id) ?? null));
    let set = byDevice.get(device.id);
    if (!set) {
      set = new Set();
      byDevice.set(device.id, set);
    }
    set.add(sub);
    if (set.size > maxPerDevice) {
      const oldest = set.values().next().value;
      if (oldest) void terminate(oldest, "deactivated");
    }
    arm(sub, expires);
    push(sub);
  };

  // The last handler of the SUBSCRIBE chain (srf.subscribe is srf.use("subscribe")): the auth middleware runs first.
  srf.use("subscribe", (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
    subscribe(req, res).catch((err: unknown) => {
      log.error({ err }, "MWI SUBSCRIBE failed");
      if (!res.finalResponseSent) res.send(500);
    });
  });

  const refresh = (deviceId: string): void => {
    for (const sub of byDevice.get(deviceId) ?? []) push(sub);
  };

  ctx.commands.handle("mwi", async (command) => {
    // The directory stores these counts too (the sync client's command hook); keeping them here as well
    // makes the NOTIFY independent of which of the two ran first.
    for (const m of command.mailboxes) {
      fromCommands.set(m.deviceId, m);
      directorySaid.set(m.deviceId, JSON.stringify(ctx.directory.mailbox(m.deviceId) ?? null));
      refresh(m.deviceId);
    }
  });

  ctx.directory.onChange((change) => {
    for (const id of change.removed)
      for (const sub of [...(byDevice.get(id) ?? [])]) void terminate(sub, "noresource");
    for (const d of change.upserted) {
      if (!d.enabled) for (const sub of [...(byDevice.get(d.id) ?? [])]) void terminate(sub, "noresource");
    }
    // A configuration snapshot brings the edge's counts: when the directory's value for a subscribed device
    // changed, it is newer than any command seen before it.
    for (const deviceId of byDevice.keys()) {
      const now = JSON.stringify(ctx.directory.mailbox(deviceId) ?? null);
      const before = directorySaid.get(deviceId);
      directorySaid.set(deviceId, now);
      if (before !== undefined && before !== now) {
        fromCommands.delete(deviceId);
        refresh(deviceId);
      }
    }
  });

  return {
    subscriptionCount(deviceId?: string): number {
      if (deviceId !== undefined) return byDevice.get(deviceId)?.size ?? 0;
      let n = 0;
      for (const set of byDevice.values()) n += set.size;
      return n;
    },
    refresh,
    async close(): Promise<void> {
      const all = [...byDevice.values()].flatMap((s) => [...s]);
      await Promise.all(all.map((sub) => terminate(sub, "deactivated")));
    },
  };
}
