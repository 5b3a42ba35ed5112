/**
 * SIP credentials of a device: the generated password (shown once, never
 * stored), its HA1 digests, the installation's fixed realm, and extension numbers.
 */
import { type Db, devices, parseSetting, settingDefault, settings } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { z } from "zod";

/**
 * Characters of generated SIP passwords: letters and digits without the ones
 * people confuse when typing a password into a phone's keypad menu (0/O/o, 1/l/I).
 * 56 symbols; 24 characters carry about 139 bits.
 */
export const SIP_PASSWORD_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";
export const SIP_PASSWORD_LENGTH = 24;

/** A random SIP password from {@link SIP_PASSWORD_ALPHABET} (rejection sampling: no modulo bias). */
export function generateSipPassword(length = SIP_PASSWORD_LENGTH): string {
  const alphabet = SIP_PASSWORD_ALPHABET;
  // Largest multiple of the alphabet size below 256: bytes at or above it are redrawn.
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
    for (const b of bytes) {
      if (b >= limit) continue;
      out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

// --- realm ----------------------------------------------------------------------

export const SIP_SETTINGS_KEY = "sip";

/**
 * The installation's digest realm (settings key `sip`, default "gosip"). Written
 * on first use and never changed after devices exist: every stored HA1 depends on it.
 */
export async function getSipRealm(db: Db): Promise<string> {
  const readRealm = async () => {
    const [row] = await db
      .select({ value: settings.value })
      .from(settings)
      .where(eq(settings.key, SIP_SETTINGS_KEY));
    return row && parseSetting("sip", row.value).realm;
  };
  // Once written (the usual case) this is one read and no write.
  const stored = await readRealm();
  if (stored !== undefined) return stored;
  // First use: insert-or-ignore, then read, so two first devices created at once agree on one realm.
  await db
    .insert(settings)
    .values({ key: SIP_SETTINGS_KEY, value: settingDefault("sip") })
    .onConflictDoNothing();
  return (await readRealm()) ?? settingDefault("sip").realm;
}

// --- extensions -------------------------------------------------------------------

export const FIRST_EXTENSION = 101;

/** Numbers that must always reach the PSTN (SPEC §1), so no extension may shadow them. */
export const EMERGENCY_NUMBERS: readonly string[] = ["911", "112", "999", "000", "110", "119"];

export const extensionSchema = z
  .string()
  .regex(/^\d{2,6}$/, "extension must be 2 to 6 digits")
  .refine((e) => !EMERGENCY_NUMBERS.includes(e), "extension must not be an emergency number");

/** The lowest free extension from {@link FIRST_EXTENSION} that is not an emergency number. */
export function nextFreeExtension(taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let n = FIRST_EXTENSION; n <= 999_999; n++) {
    const candidate = String(n);
    if (!used.has(candidate) && !EMERGENCY_NUMBERS.includes(candidate)) return candidate;
  }
  throw new Error("no free extension left");
}

/** Reads the extensions in use and picks the next free one. */
export async function allocateExtension(db: Db): Promise<string> {
  const rows = await db.select({ extension: devices.extension }).from(devices);
  return nextFreeExtension(rows.map((r) => r.extension));
}
