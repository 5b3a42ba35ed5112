// MediaService's pure parts: the daemon's command line, rtpengine's pcap naming, SDP address reading.
import { describe, expect, it } from "vitest";
import { escapeCallIdForFile, sdpConnectionAddress } from "./media.ts";
import { rtpengineArgs } from "./rtpengine-process.ts";

describe("rtpengineArgs", () => {
  it("runs in userspace, in the foreground, logging to stderr, ng on the given loopback port", () => {
    const args = rtpengineArgs({ interface: "127.0.0.1" }, "127.0.0.1", 2223);
    expect(args).toEqual(
      expect.arrayContaining([
        "--config-file=none",
        "--table=-1",
        "--foreground",
        "--log-stderr",
        "--listen-ng=127.0.0.1:2223",
        "--interface=127.0.0.1",
        "--port-min=30000",
        "--port-max=30200",
        "--timeout=60",
        "--silent-timeout=3600",
        "--delete-delay=0",
      ]),
    );
    expect(args.some((a) => a.startsWith("--recording"))).toBe(false);
  });

  it("advertises an external address and records into the given directory", () => {
    const args = rtpengineArgs(
      {
        interface: "10.0.0.5",
        advertiseAddress: "203.0.113.9",
        recordingDir: "rec",
        portMin: 40000,
        portMax: 40100,
      },
      "::1",
      5000,
    );
    expect(args).toEqual(
      expect.arrayContaining([
        "--interface=10.0.0.5!203.0.113.9",
        "--listen-ng=[::1]:5000",
        "--recording-dir=rec",
        "--recording-method=pcap",
        "--port-min=40000",
        "--port-max=40100",
      ]),
    );
  });
});

describe("escapeCallIdForFile", () => {
  it("escapes like glib's g_uri_escape_string without reserved characters", () => {
    expect(escapeCallIdForFile("abc-123_x.y~z")).toBe("abc-123_x.y~z");
    expect(escapeCallIdForFile("a1b2@192.168.1.2")).toBe("a1b2%40192.168.1.2");
    expect(escapeCallIdForFile("x/y:z+ é")).toBe("x%2Fy%3Az%2B%20%C3%A9");
  });
});

describe("sdpConnectionAddress", () => {
  it("reads the session (or first media) c= address", () => {
    expect(sdpConnectionAddress("v=0\r\nc=IN IP4 192.168.1.20\r\nm=audio 4000 RTP/AVP 0\r\n")).toBe(
      "192.168.1.20",
    );
    expect(sdpConnectionAddress("v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 fd00::1\r\n")).toBe("fd00::1");
    expect(sdpConnectionAddress("v=0\r\n")).toBeUndefined();
  });
});
