import * as path from 'node:path';
import type { Digest } from './digest.js';
import type { ContainerConfig, HealthConfig, HistoryEntry, ImageConfig } from './types.js';

/*
 * Pure edits of an image config: each returns a new config and leaves its input alone, so a
 * step's "config change" can be computed, cached and replayed without side effects.
 */

export function emptyConfig(platform: { os: string; arch: string; variant?: string }, created?: string): ImageConfig {
  return {
    ...(created ? { created } : {}),
    architecture: platform.arch,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

function editRuntime(cfg: ImageConfig, fn: (c: ContainerConfig) => ContainerConfig): ImageConfig {
  return { ...cfg, config: fn({ ...cfg.config }) };
}

export const withEnv = (cfg: ImageConfig, env: string[]): ImageConfig => editRuntime(cfg, (c) => ({ ...c, Env: env }));
export const withCmd = (cfg: ImageConfig, cmd: string[] | null): ImageConfig => editRuntime(cfg, (c) => ({ ...c, Cmd: cmd }));
export const withEntrypoint = (cfg: ImageConfig, ep: string[] | null, resetCmd: boolean): ImageConfig =>
  editRuntime(cfg, (c) => ({ ...c, Entrypoint: ep, ...(resetCmd ? { Cmd: null } : {}) }));
export const withUser = (cfg: ImageConfig, user: string): ImageConfig => editRuntime(cfg, (c) => ({ ...c, User: user }));
export const withStopSignal = (cfg: ImageConfig, sig: string): ImageConfig => editRuntime(cfg, (c) => ({ ...c, StopSignal: sig }));
export const withShell = (cfg: ImageConfig, shell: string[]): ImageConfig => editRuntime(cfg, (c) => ({ ...c, Shell: shell }));
export const withHealthcheck = (cfg: ImageConfig, hc: HealthConfig): ImageConfig => editRuntime(cfg, (c) => ({ ...c, Healthcheck: hc }));
export const withAuthor = (cfg: ImageConfig, author: string): ImageConfig => ({ ...cfg, author });

/** A map with its keys in byte order, as Go's encoding/json writes maps (Docker's configs). */
function sortedKeys<T>(m: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) out[k] = m[k] as T;
  return out;
}

export function withLabels(cfg: ImageConfig, labels: readonly [string, string][]): ImageConfig {
  return editRuntime(cfg, (c) => {
    const next = { ...(c.Labels ?? {}) };
    for (const [k, v] of labels) next[k] = v;
    return { ...c, Labels: sortedKeys(next) };
  });
}

export function withOnBuild(cfg: ImageConfig, expression: string): ImageConfig {
  return editRuntime(cfg, (c) => ({ ...c, OnBuild: [...(c.OnBuild ?? []), expression] }));
}

export function clearOnBuild(cfg: ImageConfig): ImageConfig {
  return editRuntime(cfg, (c) => {
    const { OnBuild: _drop, ...rest } = c;
    return rest;
  });
}

/** `80`, `80/UDP`, `8000-8002/tcp` → `80/tcp`, `80/udp`, `8000/tcp`… (Docker's nat.ParsePortSpecs). */
export function normalizePorts(ports: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of ports) {
    const [range = '', proto = 'tcp'] = p.split('/');
    const [lo = '', hi] = range.split('-');
    const a = Number(lo);
    const b = hi === undefined ? a : Number(hi);
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b > 65535 || b < a) throw new Error(`invalid port "${p}"`);
    if (!['tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) throw new Error(`invalid protocol in port "${p}"`);
    for (let n = a; n <= b; n++) out.push(`${n}/${proto.toLowerCase()}`);
  }
  return out;
}

export function withExposedPorts(cfg: ImageConfig, ports: readonly string[]): ImageConfig {
  return editRuntime(cfg, (c) => {
    const next: Record<string, Record<string, never>> = { ...(c.ExposedPorts ?? {}) };
    for (const p of normalizePorts(ports)) next[p] = {};
    return { ...c, ExposedPorts: sortedKeys(next) };
  });
}

export function withVolumes(cfg: ImageConfig, paths: readonly string[]): ImageConfig {
  return editRuntime(cfg, (c) => {
    const next: Record<string, Record<string, never>> = { ...(c.Volumes ?? {}) };
    for (const p of paths) next[p] = {};
    return { ...c, Volumes: sortedKeys(next) };
  });
}

/** WORKDIR: relative paths resolve against the current one, result cleaned (`/a/../b` → `/b`). */
export function resolveWorkdir(current: string | undefined, p: string): string {
  return path.posix.resolve(current || '/', p);
}

export const withWorkdir = (cfg: ImageConfig, dir: string): ImageConfig => editRuntime(cfg, (c) => ({ ...c, WorkingDir: dir }));

export function withHistory(cfg: ImageConfig, entry: HistoryEntry): ImageConfig {
  return { ...cfg, history: [...(cfg.history ?? []), entry] };
}

export function withLayer(cfg: ImageConfig, diffId: Digest, entry: HistoryEntry): ImageConfig {
  return { ...withHistory(cfg, entry), rootfs: { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids, diffId] } };
}

export const withCreated = (cfg: ImageConfig, created: string): ImageConfig => ({ ...cfg, created });

/** The config with every timestamp taken out: what two builds of the same inputs share. */
function timeless(cfg: ImageConfig): unknown {
  const { created: _created, history, ...rest } = cfg;
  return { ...rest, history: (history ?? []).map(({ created: _c, ...h }) => h) };
}

/** True when two configs differ in their timestamps at most. */
export const sameButCreated = (a: ImageConfig, b: ImageConfig): boolean => JSON.stringify(timeless(a)) === JSON.stringify(timeless(b));

/** Docker's default shell for shell-form commands. */
export const DEFAULT_SHELL = ['/bin/sh', '-c'] as const;
