// The drachtio-srf application the engine's integration tests and benchmark run against the engine:
// OPTIONS -> 200; REGISTER with digest done here (401, then 200 with Contact/Expires); INVITE answered,
// rejected, left ringing (CANCEL) or bridged (srf.createB2BUA) depending on the Request-URI user; in-dialog
// re-INVITE, INFO, NOTIFY answered. It counts what it saw so tests can assert what a user would notice.
import type Srf from "drachtio-srf";
import { digestVerifier, ha1 } from "./digest.ts";

type SrfRequest = Srf.SrfRequest;
type SrfResponse = Srf.SrfResponse;
type Dialog = Srf.Dialog;

export const REALM = "gosip.test";
export const USERS: ReadonlyMap<string, string> = new Map([
  ["alice", "secret"],
  ["bob", "s3cret-bob"],
]);

/** SDP the app answers with (signalling-only tests: nobody sends media to it). */
export const ANSWER_SDP = [
  "v=0",
  "o=gosip 1 1 IN IP4 127.0.0.1",
  "s=gosip-test",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "m=audio 40000 RTP/AVP 0",
  "a=rtpmap:0 PCMU/8000",
  "",
].join("\r\n");

export type AppEvent =
  | "options"
  | "register-challenged"
  | "register-ok"
  | "register-rejected"
  | "invite"
  | "answered"
  | "ack"
  | "rejected"
  | "ringing"
  | "cancel"
  | "bye-received"
  | "reinvite"
  | "info"
  | "notify"
  | "b2bua-connected"
  | "b2bua-failed"
  | "b2bua-cancelled"
  | "b2bua-rejected"
  | "b2bua-a-hangup"
  | "b2bua-b-hangup"
  | "error";

export interface TestAppOptions {
  /** Request-URI the B2BUA sends the b-leg to (INVITEs to user "b2bua"). */
  b2buaTarget?: () => string;
}

export interface TestApp {
  count(event: AppEvent): number;
  /** Resolves when count(event) reaches n; rejects after timeoutMs. */
  waitFor(event: AppEvent, n: number, timeoutMs?: number): Promise<void>;
  /** Contacts registered per AOR user (last REGISTER wins). */
  readonly registrations: ReadonlyMap<string, { contact: string; expires: number }>;
  /** Messages of errors the app caught (should stay empty). */
  readonly errors: string[];
}

/** srf's Dialog#connected (false once a BYE ended it); not in drachtio-srf's type declarations. */
function isConnected(dialog: Dialog): boolean {
  return (dialog as unknown as { connected?: boolean }).connected !== false;
}

function requestUser(uri: string): string {
  const match = /^sips?:([^@;?]+)@/i.exec(uri);
  return match?.[1] ?? "";
}

/** Installs the test application's handlers on an Srf instance (before connect, so its routes go out with the login). */
export function installTestApp(srf: Srf, options: TestAppOptions = {}): TestApp {
  const counts = new Map<AppEvent, number>();
  const waiters = new Set<{ event: AppEvent; n: number; resolve: () => void }>();
  const errors: string[] = [];
  const registrations = new Map<string, { contact: string; expires: number }>();
  const users = new Map([...USERS].map(([u, p]) => [u, ha1(u, REALM, p)] as const));
  const digest = digestVerifier(REALM, users);

  const bump = (event: AppEvent): void => {
    const n = (counts.get(event) ?? 0) + 1;
    counts.set(event, n);
    for (const w of waiters) {
      if (w.event === event && n >= w.n) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };
  const fail = (err: unknown): void => {
    if (errors.length < 100) errors.push(err instanceof Error ? err.message : String(err));
    bump("error");
  };

  srf.use("options", (_req: SrfRequest, res: SrfResponse) => {
    bump("options");
    res.send(200, { headers: { Allow: "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REGISTER" } });
  });

  srf.use("register", (req: SrfRequest, res: SrfResponse) => {
    const user = digest.verify("REGISTER", req.get("Authorization") || undefined);
    if (!user) {
      // A wrong answer and "no credentials yet" both get a fresh challenge, as registrars do.
      bump(req.has("Authorization") ? "register-rejected" : "register-challenged");
      res.send(401, { headers: { "WWW-Authenticate": digest.challenge() } });
      return;
    }
    const contact = req.get("Contact");
    const expires = Number.parseInt(req.get("Expires") || "3600", 10) || 3600;
    registrations.set(user, { contact, expires });
    bump("register-ok");
    res.send(200, { headers: { Contact: `${contact};expires=${expires}`, Expires: String(expires) } });
  });

  const watchDialog = (dialog: Dialog): void => {
    dialog.on("destroy", () => bump("bye-received"));
    dialog.on("modify", (_req: SrfRequest, res: SrfResponse) => {
      bump("reinvite");
      res.send(200, { body: ANSWER_SDP, headers: { "Content-Type": "application/sdp" } });
    });
    dialog.on("info", (_req: SrfRequest, res: SrfResponse) => {
      bump("info");
      res.send(200);
    });
    dialog.on("notify", (_req: SrfRequest, res: SrfResponse) => {
      bump("notify");
      res.send(200);
    });
  };

  const hangUp = (dialog: Dialog): void => {
    dialog.destroy(undefined, (err: unknown) => {
      if (err) fail(err);
    });
  };

  const bridge = async (req: SrfRequest, res: SrfResponse, target: string): Promise<void> => {
    try {
      const { uas, uac } = await srf.createB2BUA(req, res, target, { localSdpB: req.body });
      bump("b2bua-connected");
      // srf leaves hanging up the other leg to the app; count which side ended the call.
      uas.on("destroy", () => {
        bump("b2bua-a-hangup");
        hangUp(uac);
      });
      uac.on("destroy", () => {
        bump("b2bua-b-hangup");
        hangUp(uas);
      });
      // A BYE that arrived in the same socket read as the 200's confirmation was handled before the promise
      // continuation above attached the listeners: srf already ended that dialog, so end the other one now.
      if (!isConnected(uas)) {
        bump("b2bua-a-hangup");
        hangUp(uac);
      } else if (!isConnected(uac)) {
        bump("b2bua-b-hangup");
        hangUp(uas);
      }
    } catch (err) {
      // The caller hanging up before the answer (CANCEL) rejects with 487: a normal outcome, not an error.
      const status = (err as { status?: number }).status;
      if (status === 487) {
        bump("b2bua-cancelled");
        return;
      }
      // The callee refusing (busy, declined...) is relayed to the caller by srf (passFailure): also normal.
      if (status !== undefined && status >= 400) {
        bump("b2bua-rejected");
        return;
      }
      bump("b2bua-failed");
      fail(err);
    }
  };

  srf.invite((req: SrfRequest, res: SrfResponse) => {
    bump("invite");
    const user = requestUser(req.uri);
    if (user === "busy") {
      bump("rejected");
      res.send(486);
      return;
    }
    if (user === "ring") {
      req.on("cancel", () => bump("cancel"));
      res.send(180);
      bump("ringing");
      return;
    }
    if (user === "b2bua") {
      const target = options.b2buaTarget?.();
      if (!target) {
        res.send(503);
        return;
      }
      void bridge(req, res, target);
      return;
    }
    srf
      .createUAS(req, res, { localSdp: ANSWER_SDP })
      .then((dialog: Dialog) => {
        // createUAS resolves once the 200 is sent; srf emits 'ack' on the dialog when it arrives.
        bump("answered");
        dialog.on("ack", () => bump("ack"));
        watchDialog(dialog);
      })
      .catch(fail);
  });

  return {
    count: (event) => counts.get(event) ?? 0,
    waitFor(event, n, timeoutMs = 5000) {
      if ((counts.get(event) ?? 0) >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter = { event, n, resolve };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`app saw ${event} ${counts.get(event) ?? 0} times, expected ${n}`));
        }, timeoutMs);
        waiter.resolve = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(waiter);
      });
    },
    registrations,
    errors,
  };
}
