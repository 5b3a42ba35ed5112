/**
 * Twilio's media anchor for a call: like Twilio, the simulator terminates each leg's RTP on its own
 * address and forwards it to the other leg once they are bridged. One UDP socket faces the caller, one
 * faces the dialled party; each answers with its own SDP, so a leg can be answered before anyone is
 * bridged (Twilio answers a SIP Domain call at once for a <Dial> without answerOnBridge) and connected
 * later without a re-INVITE. Until bridged, packets are counted and dropped.
 */
import { createSocket, type Socket } from "node:dgram";
import { type MediaTarget, sdpMediaTarget } from "../../../relay/src/testing/rtp-peer.ts";

function bind(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      s.off("error", reject);
      resolve(s);
    });
  });
}

/** A G.711 (PCMU, PCMA) + telephone-event SDP for a socket on loopback. */
function sdpFor(port: number, sessionId: number, version: number): string {
  return `${[
    "v=0",
    `o=TwilioSim ${sessionId} ${version} IN IP4 127.0.0.1`,
    "s=Twilio Media Gateway",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    `m=audio ${port} RTP/AVP 0 8 101`,
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=sendrecv",
  ].join("\r\n")}\r\n`;
}

export class MediaAnchor {
  private callerTarget: MediaTarget | undefined;
  private calleeTarget: MediaTarget | undefined;
  /** Packets received from each side (forwarded or not). */
  readonly received = { caller: 0, callee: 0 };
  private readonly sessionId = Math.floor(Math.random() * 0x7fffffff);
  private version = 1;
  private closed = false;

  private constructor(
    private readonly callerSide: Socket,
    private readonly calleeSide: Socket,
  ) {
    callerSide.on("message", (msg) => {
      this.received.caller++;
      const t = this.calleeTarget;
      if (t && !this.closed) calleeSide.send(msg, t.port, t.address);
    });
    calleeSide.on("message", (msg) => {
      this.received.callee++;
      const t = this.callerTarget;
      if (t && !this.closed) callerSide.send(msg, t.port, t.address);
    });
  }

  static async open(): Promise<MediaAnchor> {
    const a = await bind();
    try {
      return new MediaAnchor(a, await bind());
    } catch (err) {
      a.close();
      throw err;
    }
  }

  /** The SDP Twilio answers the caller with. */
  callerSdp(): string {
    return sdpFor(this.callerSide.address().port, this.sessionId, this.version++);
  }

  /** The SDP Twilio offers a dialled party. */
  calleeSdp(): string {
    return sdpFor(this.calleeSide.address().port, this.sessionId + 1, this.version++);
  }

  /** Where the caller's media goes (from the caller's SDP). */
  setCaller(sdp: string): void {
    this.callerTarget = sdpMediaTarget(sdp);
  }

  /** Where the bridged party's media goes (from its SDP). */
  setCallee(sdp: string): void {
    this.calleeTarget = sdpMediaTarget(sdp);
  }

  /** Stops forwarding to the dialled party (its leg ended). */
  clearCallee(): void {
    this.calleeTarget = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.callerSide.close();
    this.calleeSide.close();
  }
}
