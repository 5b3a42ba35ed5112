/** hono environment shared by every edge route: what middleware puts on the context. */
import type { EdgeDeps } from "./platform/types.ts";
import type { WebhookParams } from "./twilio/webhook.ts";

export type Role = "admin" | "user";

/** The signed-in user, as loaded by the session middleware. */
export interface AuthUser {
  id: string;
  email: string;
  name: string;
  role: Role;
}

export interface AppEnv {
  Variables: {
    deps: EdgeDeps;
    /** Set by the session middleware when a valid session cookie came with the request. */
    user: AuthUser | undefined;
    /** Id (hash) of the current session, for logout and password change. */
    sessionId: string | undefined;
    /** Client IP from the socket (Node) or CF-Connecting-IP (Workers); never from X-Forwarded-For. */
    clientIp: string;
    /** Parameters of a Twilio webhook whose signature was verified (twilio/webhook.ts). */
    twilioParams: WebhookParams | undefined;
  };
}
