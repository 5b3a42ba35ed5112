// Small value schemas shared by several JSON documents and by the API:
// E.164 numbers, clock times, weekdays, time zones, audio sources.
import { z } from "zod";

/** A phone number in E.164: `+`, country code, up to 15 digits in all. */
export const e164Schema = z.string().regex(/^\+[1-9]\d{1,14}$/, "must be an E.164 number like +15551234567");
export type E164 = z.infer<typeof e164Schema>;

/** A dialled-number prefix in E.164 form (`+1`, `+44`, `+1900`). */
export const e164PrefixSchema = z.string().regex(/^\+\d{1,15}$/, "must be a prefix like +1 or +1555");

/** A wall-clock time `HH:MM`, 00:00–23:59. */
export const clockTimeSchema = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, "must be a time HH:MM (00:00–23:59)");

/** An end time: like {@link clockTimeSchema} but also `24:00` (end of day). */
export const endClockTimeSchema = z
  .string()
  .regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, "must be a time HH:MM (00:00–24:00)");

/** Minutes since midnight of an `HH:MM` string (24:00 -> 1440). */
export function clockTimeToMinutes(hhmm: string): number {
  const [h = "0", m = "0"] = hhmm.split(":");
  return Number(h) * 60 + Number(m);
}

export const weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const weekdaySchema = z.enum(weekdays);
export type Weekday = z.infer<typeof weekdaySchema>;

/** True when `name` is an IANA time zone the runtime (Node or Workers) knows. */
export function isValidTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const timeZoneSchema = z
  .string()
  .min(1)
  .refine(isValidTimeZone, "must be an IANA time zone like America/New_York");

/** A calendar date `YYYY-MM-DD` that exists. */
export const isoDateSchema = z.iso.date();

/** A weekly window: on each listed day from `start` to `end`; `end` before `start` runs past midnight. */
export const timeWindowSchema = z
  .object({
    days: z
      .array(weekdaySchema)
      .min(1, "pick at least one day")
      .refine((d) => new Set(d).size === d.length, "days must not repeat"),
    start: clockTimeSchema,
    end: endClockTimeSchema,
  })
  .refine((w) => w.start !== w.end && !(w.start === "00:00" && w.end === "00:00"), {
    message: "start and end must differ (use 00:00–24:00 for a whole day)",
    path: ["end"],
  });
export type TimeWindow = z.infer<typeof timeWindowSchema>;

/** Something to play to a caller: text-to-speech or an uploaded audio file in the blob store. */
export const audioSourceSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("tts"),
    text: z.string().trim().min(1).max(2000),
    /** Twilio <Say> voice; the edge picks a default when absent. */
    voice: z.string().min(1).max(64).optional(),
    language: z.string().min(2).max(16).optional(),
  }),
  z.object({
    kind: z.literal("audio"),
    blobKey: z.string().min(1).max(512),
    contentType: z.string().min(1).max(100).optional(),
  }),
]);
export type AudioSource = z.infer<typeof audioSourceSchema>;
