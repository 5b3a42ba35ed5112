/**
 * The outbox job kinds of SMS/MMS, their payloads and idempotency keys, in one
 * place so the webhook, the API and the handlers (jobs.ts) agree on them.
 */
import type { JobPayload } from "@gosip/drizzle";

/** Sends one outbound message (POST Messages.json), checking Twilio first after an ambiguous attempt. */
export const SMS_SEND = "sms.send";
/** Copies one inbound media item from Twilio into the blob store, then deletes it at Twilio. */
export const SMS_MEDIA_DOWNLOAD = "sms.media-download";
/** Emails an inbound message (with its stored media) to the DID's users. */
export const SMS_FORWARD = "sms.forward";
/** Removes an uploaded image that was never sent (a day after its upload). */
export const SMS_UPLOAD_EXPIRE = "sms.upload-expire";

export interface SmsSendPayload extends JobPayload {
  v: 1;
  messageId: string;
}

export interface SmsMediaPayload extends JobPayload {
  v: 1;
  messageId: string;
  /** 0-based position in the message (MediaUrl{index}). */
  index: number;
  /** How many media items the message has (to know when the last one is done). */
  total: number;
  url: string;
  /** MediaContentType{index} as Twilio announced it. */
  contentType: string;
}

export interface SmsForwardPayload extends JobPayload {
  v: 1;
  messageId: string;
}

export interface SmsUploadExpirePayload extends JobPayload {
  v: 1;
  userId: string;
  uploadId: string;
}

export const smsSendKey = (messageId: string, attempt?: string): string =>
  attempt === undefined ? `${SMS_SEND}:${messageId}` : `${SMS_SEND}:${messageId}:${attempt}`;
export const smsMediaKey = (messageId: string, index: number): string =>
  `${SMS_MEDIA_DOWNLOAD}:${messageId}:${index}`;
export const smsForwardKey = (messageId: string): string => `${SMS_FORWARD}:${messageId}`;
export const smsUploadExpireKey = (uploadId: string): string => `${SMS_UPLOAD_EXPIRE}:${uploadId}`;

/** Parses a payload field that must be a non-empty string (payloads are JSON from the database). */
export function payloadString(payload: JobPayload, field: string): string {
  const value = payload[field];
  if (typeof value !== "string" || value === "") throw new TypeError(`job payload lacks ${field}`);
  return value;
}

export function payloadInt(payload: JobPayload, field: string): number {
  const value = payload[field];
  if (typeof value !== "number" || !Number.isInteger(value))
    throw new TypeError(`job payload lacks ${field}`);
  return value;
}
