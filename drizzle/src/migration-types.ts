// Shape of one migration as bundled into migrations.generated.ts.
export interface BundledMigration {
  /** Position in drizzle-kit's journal (0, 1, ...). */
  idx: number;
  /** File name without `.sql`, e.g. "0000_init". */
  tag: string;
  /** Journal timestamp (ms); recorded as `created_at`, exactly like drizzle's own migrator. */
  when: number;
  /** SHA-256 hex of the SQL file, recorded as `hash`. */
  hash: string;
  /** The SQL statements, split at drizzle-kit's statement breakpoints. */
  statements: string[];
}
