// Settings documents: one versioned schema per settings key.
import { z } from "zod";

/** Any settings value: a JSON object carrying its version. */
export const settingDocumentSchema = z.looseObject({ v: z.int().min(1) });
export type SettingDocument = z.infer<typeof settingDocumentSchema>;
