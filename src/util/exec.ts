import { spawn } from 'node:child_process';
import type { execa as ExecaFn } from 'execa';

let loaded: Promise<typeof ExecaFn> | undefined;

/**
 * execa, imported on first use: most commands (and every cache hit) run no external program, and
 * loading execa costs about as much as starting Node itself.
 */
export function lazyExeca(): Promise<typeof ExecaFn> {
  loaded ??= import('execa').then((m) => m.execa);
  return loaded;
}

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Run one of the small helpers lbuild drives (mount, umount, getfattr, setfattr, mknod, cp) to
 * its end: stdin closed, output collected, a non-zero exit returned, not thrown. A missing
 * program rejects with the spawn error (code ENOENT). Not execa: a build step calls these several
 * times, and execa's load and per-call set-up cost more than the programs themselves.
 */
export function runTool(cmd: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({ exitCode: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}
