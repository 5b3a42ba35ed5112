// The media feature's public face for the rest of the PBX: rtpengine's process, the ng service the B2BUA
// drives (see media.ts for the exact call sequence), and the recording-to-WAV conversion.

export type {
  AnswerParams,
  CallStats,
  DeleteParams,
  FlowCounters,
  LegStats,
  MediaErrorCode,
  MediaServiceOptions,
  OfferParams,
  RecordingStarted,
  SdpResult,
} from "./media.ts";
export { MediaError, MediaService } from "./media.ts";
export type { WavOptions, WavResult } from "./recording-file.ts";
export {
  pcapToWav,
  readWav,
  recordingComplete,
  recordingMetadataPath,
  removeRecordingFiles,
} from "./recording-file.ts";
export type { RtpengineExit, RtpengineOptions, RtpengineProcess } from "./rtpengine-process.ts";
export { startRtpengine } from "./rtpengine-process.ts";
