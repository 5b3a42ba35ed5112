// A real softphone on the far end: baresip (PCMU, auto-answer, a 440 Hz sine as its microphone, what it hears
// dumped to WAV by its sndfile module) takes an inbound call from "Twilio" (the world engine's srf UAC with an
// RtpPeer sending 1 kHz) through the relay and rtpengine. Both ends must hear the other's tone.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dominantFrequency } from "../../testing/rtp-audio.ts";
import { wavTo8k } from "../../testing/wav.ts";
import { freeUdpPort } from "../media/rtpengine-process.ts";
import { type CallRig, sdpMediaTarget, startCallRig, wait } from "../testing/call-harness.ts";
import { testDevice } from "../testing/fakes.ts";

const alice = testDevice("alice", "alice-secret-1", { id: "dev-alice", name: "Alice", extension: "101" });

let rig: CallRig;
let dir = "";
let baresip: ChildProcess | undefined;
let output = "";
let sipPort = 0;

async function startBaresip(): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), "gosip-baresip-"));
  sipPort = await freeUdpPort("127.0.0.1");
  const config = [
    "module_path /usr/lib/baresip/modules",
    `sip_listen 127.0.0.1:${sipPort}`,
    "module g711.so",
    "module ausine.so",
    "module aubridge.so",
    "module sndfile.so",
    "module account.so",
    "audio_source ausine,440",
    "audio_player aubridge,sink",
    // ausine produces 48 kHz stereo only; baresip resamples to PCMU's 8 kHz mono.
    "ausrc_srate 48000",
    "ausrc_channels 2",
    `snd_path ${dir}`,
    "rtp_ports 32000-32999",
    "",
  ].join("\n");
  await writeFile(join(dir, "config"), config);
  await writeFile(
    join(dir, "accounts"),
    `<sip:alice@127.0.0.1:${sipPort}>;regint=0;answermode=auto;audio_codecs=PCMU\n`,
  );
  await writeFile(join(dir, "contacts"), "");
  const child = spawn("baresip", ["-f", dir, "-t", "90"], { stdio: ["pipe", "pipe", "pipe"] });
  baresip = child;
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const deadline = Date.now() + 10_000;
  while (!/baresip is ready|Listening on/i.test(output)) {
    if (child.exitCode !== null) throw new Error(`baresip exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`baresip did not start: ${output}`);
    await wait(50);
  }
}

beforeAll(async () => {
  rig = await startCallRig({ devices: [alice] });
  await startBaresip();
});
afterAll(async () => {
  if (baresip && baresip.exitCode === null) {
    const gone = new Promise((r) => baresip?.once("exit", r));
    baresip.kill("SIGTERM");
    const t = setTimeout(() => baresip?.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(t);
  }
  await rig?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("baresip as the phone", () => {
  it("an inbound call reaches baresip, it auto-answers, and each side hears the other's tone", async () => {
    const now = new Date().toISOString();
    rig.location.add({
      deviceId: alice.id,
      contactUri: `sip:alice@127.0.0.1:${sipPort}`,
      sourceAddress: "127.0.0.1",
      sourcePort: sipPort,
      transport: "udp",
      userAgent: "baresip",
      instanceId: null,
      callId: null,
      cseq: null,
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      lastSeenAt: now,
    });
    const twilio = await rig.dial("101", { trunk: true, from: "+15557654321", callSid: "CAbaresip" });
    // Give baresip's audio a moment to start, then listen while sending 1 kHz to it.
    await wait(300);
    twilio.peer.reset();
    const sent = await twilio.peer.sendTone(1000, 2000, sdpMediaTarget(twilio.remoteSdp()));
    const heard = twilio.peer.received();
    expect(heard.frequency, output).toBeGreaterThan(430);
    expect(heard.frequency).toBeLessThan(450);
    expect(heard.audioPackets).toBeGreaterThan(sent * 0.8);

    twilio.dialog.destroy();
    const cdr = await rig.events.waitFor("call.ended", (e) => e.twilioCallSid === "CAbaresip", 15_000);
    expect(cdr).toMatchObject({ disposition: "answered", hangupBy: "caller", deviceId: alice.id });
    expect(cdr.rtp?.toCallee).toBeGreaterThan(sent * 0.8);
    await expect(rig.media.query(cdr.callId)).rejects.toThrow();

    // What baresip heard (its decoder output), as sndfile wrote it.
    await wait(300);
    const files = (await readdir(dir)).filter((f) => f.endsWith("-dec.wav"));
    expect(files.length, `${output}\nfiles: ${(await readdir(dir)).join(",")}`).toBeGreaterThan(0);
    const pcm = wavTo8k(await readFile(join(dir, files[0] ?? "")));
    expect(pcm.length).toBeGreaterThan(8000);
    const f = dominantFrequency(pcm);
    expect(f).toBeGreaterThan(990);
    expect(f).toBeLessThan(1010);
  });
});
