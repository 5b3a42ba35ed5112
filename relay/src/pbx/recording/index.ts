// The recording feature as the PBX installs it: a Recorder (recorder.ts) with the edge's recording.start /
// recording.stop commands, rtpengine's DTMF log driving the in-call feature code, and its stored work resumed.
//
// Wiring (pbx/app.ts, main.ts):
//   const dtmf = await DtmfListener.open();                         // before rtpengine: it needs the port
//   const rtp = await startRtpengine({ ..., recordingDir, extraArgs: dtmf.rtpengineArgs() });
//   const recorder = await createRecorder(ctx, media, new HttpUploader({ edgeUrl, relayToken }),
//                                         { dtmf, lookup: (id) => calls.get(id) });
//   // calls see the events through recorder.observe(ctx.events): call.answered starts always-on
//   // recording (device.recordAlways), call.ended finishes a call's recording.
//   // the sync client, when the edge acks a recording.ready event: recorder.confirm(event.recordingId)
import { CommandError, type PbxContext } from "../context.ts";
import type { DtmfListener } from "./dtmf.ts";
import { Recorder, type RecorderContext, type RecorderOptions, type RecordingMedia } from "./recorder.ts";
import type { Uploader } from "./uploader.ts";

export { DtmfListener, FeatureCodes, parseDtmfLog } from "./dtmf.ts";
export {
  type CallLookup,
  Recorder,
  type RecorderOptions,
  type RecordingMedia,
  type RecordingRow,
  type RecordingTrigger,
  type StartResult,
  type StopResult,
} from "./recorder.ts";
export { type FreeSpaceProbe, type StorageSample, statfsProbe } from "./storage.ts";
export { HttpUploader, type RecordingUpload, UploadError, type Uploader } from "./uploader.ts";

export interface CreateRecorderOptions extends RecorderOptions {
  /** rtpengine's DTMF log listener (started with its rtpengineArgs()): enables the in-call feature code. */
  dtmf?: DtmfListener;
}

/**
 * Builds the Recorder, registers the recording.start/stop command handlers, connects the DTMF log and resumes
 * uploads a previous run left unconfirmed.
 */
export async function createRecorder(
  ctx: RecorderContext & Pick<PbxContext, "commands">,
  media: RecordingMedia,
  uploader: Uploader,
  options: CreateRecorderOptions = {},
): Promise<Recorder> {
  const { dtmf, ...opts } = options;
  const recorder = new Recorder(ctx, media, uploader, opts);
  ctx.commands.handle("recording.start", async ({ callId }) => {
    if (opts.lookup && !opts.lookup(callId)) throw new CommandError("no such call on the relay");
    const r = await recorder.start(callId, "on_demand");
    if (r.status === "skipped")
      throw new CommandError(
        r.reason === "storage_low"
          ? "recording storage is low: the call goes on unrecorded"
          : "the media server could not record this call",
      );
  });
  ctx.commands.handle("recording.stop", async ({ callId }) => {
    await recorder.stop(callId);
  });
  dtmf?.onDigit((d) => recorder.onDtmf(d));
  await recorder.open();
  return recorder;
}
