// The dial plan as a phone's user meets it: extensions, feature codes, emergency numbers, national and
// international dialling in several countries, and the outbound policy's refusals.
import { isPremiumRate, type SyncDevice, toE164 } from "@gosip/drizzle";
import { describe, expect, it } from "vitest";
import { classifyDialled, type DialDecision, dialledDigits } from "./dialplan.ts";

function device(over: Partial<SyncDevice> = {}): SyncDevice {
  return {
    id: "dev-1",
    userId: null,
    name: "Desk",
    extension: "101",
    sipUsername: "desk",
    ha1Md5: "0".repeat(32),
    ha1Sha256: "0".repeat(64),
    enabled: true,
    dnd: false,
    recordAlways: false,
    outboundPolicy: {
      v: 1,
      allowOutbound: true,
      allowedPrefixes: ["+1"],
      blockedPrefixes: [],
      blockPremiumRate: true,
    },
    callerIdE164: null,
    ...over,
  };
}

const kitchen = device({ id: "dev-2", extension: "102", sipUsername: "kitchen" });

function dial(user: string, country = "US", caller = device()): DialDecision {
  return classifyDialled(user, {
    caller,
    defaultCountry: country,
    byExtension: (e) => [caller, kitchen].find((d) => d.extension === e),
  });
}

describe("dial plan", () => {
  it("an extension is an internal call to that device", () => {
    expect(dial("102")).toEqual({ kind: "internal", device: kitchen });
  });

  it("feature codes", () => {
    expect(dial("*78")).toEqual({ kind: "feature", feature: "dnd-on" });
    expect(dial("*79")).toEqual({ kind: "feature", feature: "dnd-off" });
    expect(dial("%2A97")).toEqual({ kind: "feature", feature: "voicemail" });
    expect(dial("*55")).toMatchObject({ kind: "refused", status: 404 });
  });

  it("emergency numbers go out as dialled, whatever the policy", () => {
    const locked = device({
      outboundPolicy: {
        v: 1,
        allowOutbound: false,
        allowedPrefixes: [],
        blockedPrefixes: ["+"],
        blockPremiumRate: true,
      },
    });
    for (const n of ["911", "112", "999"])
      expect(dial(n, "US", locked)).toEqual({ kind: "emergency", number: n });
    expect(dial("112", "DE")).toEqual({ kind: "emergency", number: "112" });
  });

  it("North American dialling: 10 digits, 1 + 10, 011, +, separators", () => {
    expect(dial("5551234567")).toEqual({ kind: "external", e164: "+15551234567" });
    expect(dial("15551234567")).toEqual({ kind: "external", e164: "+15551234567" });
    expect(dial("+15551234567")).toEqual({ kind: "external", e164: "+15551234567" });
    expect(dial("(555)%20123-4567")).toEqual({ kind: "external", e164: "+15551234567" });
    expect(dial("+1555.123.4567;phone-context=+1")).toEqual({ kind: "external", e164: "+15551234567" });
    expect(toE164("011442079460000", "US")).toEqual({ ok: true, e164: "+442079460000" });
    expect(toE164("4165550123", "CA")).toEqual({ ok: true, e164: "+14165550123" });
    expect(toE164("1234567890", "US").ok).toBe(false); // area codes never start with 1
    expect(dial("555123")).toMatchObject({ kind: "refused", status: 404 });
    expect(dial("55512345")).toMatchObject({ kind: "refused", status: 484 });
  });

  it("European dialling: trunk prefix 0 dropped, 00 international, Italy keeps its 0", () => {
    expect(toE164("02079460000", "GB")).toEqual({ ok: true, e164: "+442079460000" });
    expect(toE164("0030123456789", "GB")).toEqual({ ok: true, e164: "+30123456789" });
    expect(toE164("030123456", "DE")).toEqual({ ok: true, e164: "+4930123456" });
    expect(toE164("0142685300", "FR")).toEqual({ ok: true, e164: "+33142685300" });
    expect(toE164("0612345678", "IT")).toEqual({ ok: true, e164: "+390612345678" });
    expect(toE164("912345678", "ES")).toEqual({ ok: true, e164: "+34912345678" });
    expect(toE164("0011442079460000", "AU")).toEqual({ ok: true, e164: "+442079460000" });
    expect(toE164("0298765432", "AU")).toEqual({ ok: true, e164: "+61298765432" });
    expect(toE164("2079460000", "GB").ok).toBe(false); // no trunk prefix, no country code
    expect(toE164("0049301234567", "XX")).toEqual({ ok: true, e164: "+49301234567" });
    expect(toE164("301234567", "XX").ok).toBe(false);
  });

  it("the outbound policy refuses with 403 and says why", () => {
    expect(dial("442079460000")).toMatchObject({ kind: "refused", status: 484 });
    expect(dial("011442079460000")).toEqual({
      kind: "refused",
      status: 403,
      reason: "destination is not in the allowed prefixes",
    });
    expect(dial("19005551234")).toEqual({
      kind: "refused",
      status: 403,
      reason: "premium-rate numbers are blocked",
    });
    const noOut = device({
      outboundPolicy: {
        v: 1,
        allowOutbound: false,
        allowedPrefixes: ["+1"],
        blockedPrefixes: [],
        blockPremiumRate: true,
      },
    });
    expect(dial("5551234567", "US", noOut)).toMatchObject({
      status: 403,
      reason: "outbound calls are disabled for this device",
    });
    const blocked = device({
      outboundPolicy: {
        v: 1,
        allowOutbound: true,
        allowedPrefixes: ["+1"],
        blockedPrefixes: ["+1555"],
        blockPremiumRate: false,
      },
    });
    expect(dial("5551234567", "US", blocked)).toMatchObject({
      status: 403,
      reason: "destination is blocked",
    });
    expect(dial("19005551234", "US", blocked)).toEqual({ kind: "external", e164: "+19005551234" });
    const world = device({
      outboundPolicy: {
        v: 1,
        allowOutbound: true,
        allowedPrefixes: ["+"],
        blockedPrefixes: [],
        blockPremiumRate: true,
      },
    });
    expect(dial("00442079460000", "GB", world)).toEqual({ kind: "external", e164: "+442079460000" });
    expect(dial("09012345678", "GB", world)).toMatchObject({
      status: 403,
      reason: "premium-rate numbers are blocked",
    });
  });

  it("premium-rate ranges", () => {
    expect(isPremiumRate("+19005551234")).toBe(true);
    expect(isPremiumRate("+19765551234")).toBe(true);
    expect(isPremiumRate("+449012345678")).toBe(true);
    expect(isPremiumRate("+442079460000")).toBe(false);
    expect(isPremiumRate("+35312345678")).toBe(false); // Dublin
    expect(isPremiumRate("+15551234567")).toBe(false);
  });

  it("dialledDigits strips separators and parameters", () => {
    expect(dialledDigits("%2B1%20555")).toBe("+1555");
    expect(dialledDigits("101;user=phone")).toBe("101");
  });
});
