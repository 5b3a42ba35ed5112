// Engine configuration: defaults, and error messages that name the variable and the fix.
import { describe, expect, it } from "vitest";
import { ConfigError, loadEngineConfig } from "./config.ts";

describe("loadEngineConfig", () => {
  it("applies the documented defaults", () => {
    const c = loadEngineConfig({ ENGINE_SECRET: "long-enough-secret" });
    expect(c).toMatchObject({
      adminPort: 9022,
      adminHost: "127.0.0.1",
      sipPort: 5060,
      sipHost: "0.0.0.0",
      logLevel: "info",
    });
    expect(c.localNetworks).toBeUndefined();
  });

  it("parses ports, external address and local networks", () => {
    const c = loadEngineConfig({
      ENGINE_SECRET: "long-enough-secret",
      ENGINE_PORT: "9100",
      SIP_PORT: "5080",
      SIP_EXTERNAL_ADDRESS: "203.0.113.7",
      SIP_LOCAL_NETWORKS: "192.168.0.0/16, 10.0.0.0/8",
      LOG_LEVEL: "DEBUG",
    });
    expect(c).toMatchObject({
      adminPort: 9100,
      sipPort: 5080,
      externalAddress: "203.0.113.7",
      logLevel: "debug",
    });
    expect(c.localNetworks).toEqual(["192.168.0.0/16", "10.0.0.0/8"]);
  });

  it("reports every wrong variable with how to fix it", () => {
    let err: unknown;
    try {
      loadEngineConfig({ SIP_PORT: "70000", SIP_LOCAL_NETWORKS: "192.168.1.0/33,lan", LOG_LEVEL: "loud" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    expect(msg).toContain("ENGINE_SECRET is required");
    expect(msg).toContain("SIP_PORT must be a port number");
    expect(msg).toContain("SIP_LOCAL_NETWORKS must be comma-separated CIDRs");
    expect(msg).toContain("bad: 192.168.1.0/33, lan");
    expect(msg).toContain("LOG_LEVEL must be one of");
  });
});
