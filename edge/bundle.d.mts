/** See bundle.mjs. */
export function ensureBundle(options: {
  /** Directory of the package being bundled; inputs and `.build/` are relative to it. */
  workDir: string;
  /** Entry point, absolute or relative to workDir. */
  entry: string;
  /** Bundle file name without extension, in `<workDir>/.build/`. */
  name: string;
  /** package.json files (relative to workDir) whose npm dependencies stay external. */
  packageFiles: readonly string[];
}): Promise<string>;
