import { execa } from 'execa';
import { mkdtempSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/…). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = path.join(REPO, 'bin', 'lbuild.js');

export interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI in a child process against a store. */
export async function lbuild(root: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<Result> {
  const r = await execa(process.execPath, [BIN, '--root', root, ...args], {
    reject: false,
    env: { ...opts.env },
    extendEnv: true,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Like lbuild() but fails the test with the command's stderr when it does not exit 0. */
export async function lbuildOk(root: string, args: string[], opts: Parameters<typeof lbuild>[2] = {}): Promise<Result> {
  const r = await lbuild(root, args, opts);
  if (r.exitCode !== 0) throw new Error(`lbuild ${args.join(' ')} exited ${r.exitCode}\n${r.stderr}\n${r.stdout}`);
  return r;
}

export function tempDir(prefix = 'lbuild-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

export async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<Result> {
  const r = await execa(cmd, args, { reject: false, stdin: 'ignore', ...opts });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
