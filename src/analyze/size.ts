import { UsageError } from '../errors.js';

/** `20MB`, `1GiB`, `512k`, `1000` → bytes (decimal and binary units, as dive's config). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$/i.exec(s);
  if (!m) throw new UsageError(`invalid size "${s}" (examples: 20MB, 1GiB, 512k)`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  const base = m[3] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** pow);
}
