import { UsageError } from '../errors.js';
import { parseSize } from './size.js';

/** analyze --ci's limits; `null` is a rule turned off (dive's `disabled`). */
export interface CiLimits {
  lowestEfficiency: number | null;
  highestWastedBytes: number | null;
  highestUserWastedPercent: number | null;
}

/** dive's defaults for CI mode: what applies when neither .dive-ci nor a flag sets a rule. */
export const DEFAULT_LIMITS: CiLimits = { lowestEfficiency: 0.9, highestWastedBytes: null, highestUserWastedPercent: 0.1 };

/** A ratio as dive takes it (0.2), or a percentage (20). */
export function ratio(v: number, what: string): number {
  const f = v > 1 ? v / 100 : v;
  if (!(f >= 0 && f <= 1)) throw new UsageError(`${what} must be between 0 and 1 (or a percentage)`);
  return f;
}

/**
 * The `rules:` of a .dive-ci file (dive's format: `lowestEfficiency: 0.95`, `highestWastedBytes:
 * 20MB`, `highestUserWastedPercent: 0.20`, each may be `disabled`). Only what the file sets.
 */
export function parseDiveCi(text: string, file: string): Partial<CiLimits> {
  const out: Partial<CiLimits> = {};
  let inRules = false;
  text.split(/\r?\n/).forEach((raw, idx) => {
    const line = raw.replace(/\s+#.*$/, '').replace(/^#.*$/, '');
    if (line.trim() === '') return;
    if (/^\S/.test(line)) {
      inRules = /^rules\s*:\s*$/.test(line);
      return;
    }
    if (!inRules) return;
    const m = /^\s+(\w+)\s*:\s*["']?([^"']*?)["']?\s*$/.exec(line);
    if (!m) throw new UsageError(`${file}:${idx + 1}: expected "name: value" under rules:`);
    const [, key, value = ''] = m;
    const where = `${file}:${idx + 1}: ${key}`;
    const off = value.toLowerCase() === 'disabled';
    const num = (): number => {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n)) throw new UsageError(`${where}: "${value}" is not a number (or disabled)`);
      return n;
    };
    if (key === 'lowestEfficiency') out.lowestEfficiency = off ? null : ratio(num(), where);
    else if (key === 'highestUserWastedPercent') out.highestUserWastedPercent = off ? null : ratio(num(), where);
    else if (key === 'highestWastedBytes') out.highestWastedBytes = off ? null : parseSize(value);
    else throw new UsageError(`${where}: unknown rule (lowestEfficiency, highestWastedBytes, highestUserWastedPercent)`);
  });
  return out;
}
