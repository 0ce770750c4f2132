import { UsageError } from '../errors.js';

/** An OCI platform: `linux/arm64`, `linux/arm/v7`. */
export interface Platform {
  os: string;
  arch: string;
  variant?: string;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This host's platform, in Go's (and OCI's) names. */
export function hostPlatform(): Platform {
  const arch = GO_ARCH[process.arch] ?? process.arch;
  return arch === 'arm' ? { os: 'linux', arch, variant: 'v7' } : { os: 'linux', arch };
}

/** The names other tools use for an architecture, onto OCI's (containerd's normalisation). */
const ARCH_ALIASES: Record<string, { arch: string; variant?: string }> = {
  amd64: { arch: 'amd64' }, x86_64: { arch: 'amd64' }, 'x86-64': { arch: 'amd64' },
  arm64: { arch: 'arm64' }, aarch64: { arch: 'arm64' },
  arm: { arch: 'arm', variant: 'v7' }, armhf: { arch: 'arm', variant: 'v7' }, armel: { arch: 'arm', variant: 'v6' },
  '386': { arch: '386' }, i386: { arch: '386' }, i686: { arch: '386' },
  ppc64le: { arch: 'ppc64le' }, s390x: { arch: 's390x' }, riscv64: { arch: 'riscv64' }, mips64le: { arch: 'mips64le' },
};

/**
 * `linux/arm64`, `linux/arm/v7`, `arm64` (linux assumed), `linux/aarch64`: normalised as
 * containerd does (arm64's v8 and amd64's v1 are the default and dropped; arm is v7 unless said).
 */
export function parsePlatform(text: string, what = '--platform'): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new UsageError(`${what} ${text}: expected OS/ARCH[/VARIANT] (e.g. linux/arm64, linux/arm/v7)`);
  const [first, second, third] = parts as [string, string | undefined, string | undefined];
  const [os, arch, variant] = second === undefined ? ['linux', first, undefined] : [first, second, third];
  if (os !== 'linux') throw new UsageError(`${what} ${text}: only linux images are built (not ${os})`);
  const known = ARCH_ALIASES[arch];
  if (!known) throw new UsageError(`${what} ${text}: unknown architecture ${arch} (amd64, arm64, arm, 386, ppc64le, s390x, riscv64)`);
  let v = variant ?? known.variant;
  if ((known.arch === 'arm64' && v === 'v8') || (known.arch === 'amd64' && v === 'v1')) v = undefined;
  return { os, arch: known.arch, ...(v ? { variant: v } : {}) };
}

/** A comma-separated list (`--platform linux/amd64,linux/arm64`), without repeats. */
export function parsePlatforms(text: string): Platform[] {
  const out: Platform[] = [];
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const p = parsePlatform(part);
    if (!out.some((q) => samePlatform(p, q))) out.push(p);
  }
  if (out.length === 0) throw new UsageError('--platform: no platform given');
  return out;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.arch}${p.variant ? `/${p.variant}` : ''}`;
}

export function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.arch === b.arch && (a.variant ?? '') === (b.variant ?? '');
}

/** The platform an image config says it is for. */
export function configPlatform(c: { os?: string; architecture?: string; variant?: string }): Platform {
  return { os: c.os ?? 'linux', arch: c.architecture ?? '', ...(c.variant ? { variant: c.variant } : {}) };
}

/**
 * Whether an image of platform `have` serves a build for `want`: the same, or an image that
 * names no variant where one is wanted (many arm64 images omit v8).
 */
export function platformServes(have: Platform, want: Platform): boolean {
  return have.os === want.os && have.arch === want.arch && (have.variant === undefined || want.variant === undefined || have.variant === want.variant);
}

/** Of several candidates, the one for `want`: the same platform first, else one that serves it (platformServes). */
export function pickFor<T>(candidates: readonly T[], platformOf: (c: T) => Platform | undefined, want: Platform): T | undefined {
  const match = (test: (p: Platform) => boolean): T | undefined =>
    candidates.find((c) => {
      const p = platformOf(c);
      return p !== undefined && test(p);
    });
  return match((p) => samePlatform(p, want)) ?? match((p) => platformServes(p, want));
}

/** The ARGs Docker defines for a build: BUILD* (where it runs) and TARGET* (what it makes). */
export function platformArgs(target: Platform = hostPlatform(), build: Platform = hostPlatform()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [side, p] of [['BUILD', build], ['TARGET', target]] as const) {
    out[`${side}PLATFORM`] = formatPlatform(p);
    out[`${side}OS`] = p.os;
    out[`${side}ARCH`] = p.arch;
    out[`${side}VARIANT`] = p.variant ?? '';
  }
  return out;
}
