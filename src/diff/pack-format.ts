/**
 * Bump when the bytes packTree writes for the same file change (header encoding, tar-stream's
 * included): a previous layer's entries (file-index.ts) are then not taken over as they are.
 */
export const PACK_FORMAT = 1;
