// Validates the sipp scenario files in relay/test/sipp sipp-to-sipp, without the engine: when an engine
// test with the same scenario fails, the fault is the engine's (or the app's), not the scenario's.
import { describe, expect, it } from "vitest";
import { describe as explain, runSipp, type SippOptions, startSippServer } from "../../test/sipp.ts";

const CREDENTIALS = { username: "alice", password: "secret" };

async function pair(
  uac: string,
  uas: string,
  uacExtra: Partial<SippOptions> = {},
  uasExtra: Partial<SippOptions> = {},
) {
  const calls = 5;
  const transport = uacExtra.transport ?? "udp";
  const server = await startSippServer({ scenario: uas, calls, timeoutSeconds: 15, transport, ...uasExtra });
  try {
    const client = await runSipp({
      scenario: uac,
      remote: `127.0.0.1:${server.port}`,
      calls,
      rate: 50,
      timeoutSeconds: 15,
      ...uacExtra,
    });
    const callee = await server.done;
    return { client, callee, calls };
  } finally {
    server.kill();
  }
}

describe("sipp scenarios, sipp to sipp", () => {
  const cases: [string, string, Partial<SippOptions>, Partial<SippOptions>][] = [
    ["uac-options.xml", "uas-options.xml", {}, {}],
    ["uac-register-auth.xml", "uas-register-challenge.xml", { auth: CREDENTIALS }, {}],
    ["uac-invite.xml", "uas-answer.xml", {}, {}],
    ["uac-invite.xml", "uas-answer.xml", { transport: "tcp" }, {}],
    ["uac-invite-wait-bye.xml", "uas-answer-bye.xml", {}, {}],
    ["uac-invite.xml", "uas-answer-linger.xml", {}, {}],
    ["uac-invite-rejected.xml", "uas-reject.xml", {}, {}],
    ["uac-invite-cancel.xml", "uas-cancel.xml", {}, {}],
    ["uac-reinvite.xml", "uas-reinvite.xml", {}, {}],
    ["uac-info-notify.xml", "uas-info-notify.xml", {}, {}],
  ];
  for (const [uac, uas, uacExtra, uasExtra] of cases) {
    it(`${uac} against ${uas}${uacExtra.transport === "tcp" ? " over TCP" : ""}`, async () => {
      const keys = { user: CREDENTIALS.username, password: CREDENTIALS.password };
      const { client, callee, calls } = await pair(uac, uas, uacExtra, { keys, ...uasExtra });
      expect(client.exitCode, explain(client)).toBe(0);
      expect(client.stats.successful).toBe(calls);
      expect(client.stats.failed).toBe(0);
      expect(callee.stats.successful, explain(callee)).toBe(calls);
    });
  }

  it("the registrar scenario rejects a wrong password (so the REGISTER baseline really checks the digest)", async () => {
    const { client } = await pair(
      "uac-register-auth.xml",
      "uas-register-challenge.xml",
      { auth: { username: "alice", password: "wrong" } },
      { keys: { user: "alice", password: "secret" } },
    );
    expect(client.exitCode).not.toBe(0);
    expect(client.stats.successful).toBe(0);
    expect(client.errors).toContain("403 Forbidden");
  });
});
