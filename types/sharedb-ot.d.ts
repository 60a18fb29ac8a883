// sharedb/lib/ot.js ships no types; server/storage/sqlite-documents.ts is its one user.
declare module 'sharedb/lib/ot.js' {
  /**
   * Applies a committed op (create, del or edit) to a snapshot in place: `v`, `type` and
   * `data` change. Returns the error instead of throwing.
   */
  export function apply(snapshot: { v: number; type: string | null; data?: unknown }, op: object): Error | undefined;
}
