/**
 * Test support (Node only, never imported by the app): a real SMTP server on
 * 127.0.0.1 (the smtp-server package) that keeps every message it accepted,
 * parsed with mailparser, so a test can assert what a user's mailbox received:
 * subject, text, attachments byte for byte. It can require a login and refuse
 * recipients or answer a temporary failure, to test the outbox's handling.
 */
import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { writeSetting } from "../settings/store.ts";
import type { TestEdge } from "../test-support.ts";

export interface ReceivedEmail {
  /** Envelope recipients (RCPT TO). */
  to: string[];
  from: string;
  mail: ParsedMail;
}

export interface TestSmtpServer {
  port: number;
  received: ReceivedEmail[];
  /** Logins the server saw (username, password). */
  logins: { username: string; password: string }[];
  /** The next `count` messages are answered with this SMTP reply (e.g. 451 or 550) instead of accepted. */
  failNext(count: number, code: number, message?: string): void;
  close(): Promise<void>;
}

export async function startTestSmtpServer(
  opts: { auth?: { username: string; password: string } } = {},
): Promise<TestSmtpServer> {
  const received: ReceivedEmail[] = [];
  const logins: { username: string; password: string }[] = [];
  let failures: { count: number; code: number; message: string } = { count: 0, code: 0, message: "" };
  const server = new SMTPServer({
    // Plain SMTP on loopback: no TLS certificate to trust in tests.
    disabledCommands: opts.auth ? ["STARTTLS"] : ["STARTTLS", "AUTH"],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push({ username: auth.username ?? "", password: auth.password ?? "" });
      if (opts.auth && auth.username === opts.auth.username && auth.password === opts.auth.password)
        callback(null, { user: auth.username });
      else callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (failures.count > 0) {
          failures.count -= 1;
          callback(Object.assign(new Error(failures.message), { responseCode: failures.code }));
          return;
        }
        simpleParser(Buffer.concat(chunks)).then(
          (mail) => {
            received.push({
              to: session.envelope.rcptTo.map((r) => r.address),
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
              mail,
            });
            callback();
          },
          (err: Error) => callback(err),
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    received,
    logins,
    failNext(count, code, message = code >= 500 ? "Mailbox unavailable" : "Try again later") {
      failures = { count, code, message };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Points the edge's email settings at `smtp` (sender pbx@example.test). */
export async function useTestSmtp(
  t: TestEdge,
  smtp: TestSmtpServer,
  auth?: { username: string; password: string },
): Promise<void> {
  await writeSetting(t.deps, "email", {
    v: 1,
    provider: "smtp",
    from: "pbx@example.test",
    smtp: {
      host: "127.0.0.1",
      port: smtp.port,
      secure: false,
      ...(auth ? { username: auth.username, password: auth.password } : {}),
    },
  });
}
