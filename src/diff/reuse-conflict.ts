/** An incremental COPY cannot stand in for a full one here (builder/reuse.ts): the step is copied in full. */
export class ReuseConflict extends Error {}
