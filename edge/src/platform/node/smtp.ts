/**
 * SMTP delivery on Node through nodemailer (the Workers bundle never imports this
 * file: Workers have no SMTP, email goes through Postmark there). A transport is
 * made per message because the server settings can change between two emails and
 * a home PBX sends a handful a day; pooling would buy nothing.
 */
import { Buffer } from "node:buffer";
import { createTransport } from "nodemailer";
import type { OutgoingEmail, SmtpServerOptions, SmtpTransport } from "../types.ts";

/** How long each SMTP phase may take before the attempt is abandoned (and retried by the outbox). */
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;

export const nodeSmtpTransport: SmtpTransport = {
  async send(server: SmtpServerOptions, email: OutgoingEmail): Promise<void> {
    const transport = createTransport({
      host: server.host,
      port: server.port,
      secure: server.secure,
      ...(server.username !== undefined
        ? { auth: { user: server.username, pass: server.password ?? "" } }
        : {}),
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      greetingTimeout: GREETING_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      // Never log message bodies or credentials.
      logger: false,
      debug: false,
    });
    try {
      await transport.sendMail({
        from: email.from,
        to: email.to.name ? { name: email.to.name, address: email.to.address } : email.to.address,
        subject: email.subject,
        text: email.text,
        ...(email.html !== undefined ? { html: email.html } : {}),
        ...(email.messageId !== undefined ? { messageId: email.messageId } : {}),
        attachments: email.attachments.map((a) => ({
          filename: a.filename,
          contentType: a.contentType,
          content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength),
        })),
      });
    } finally {
      transport.close();
    }
  },
};
