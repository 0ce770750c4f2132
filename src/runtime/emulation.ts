import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lazyExeca } from '../util/exec.js';
import { LbuildError } from '../errors.js';
import { type Platform, formatPlatform, hostPlatform } from '../oci/platform.js';

/*
 * RUN for another architecture runs under QEMU user emulation: the kernel's binfmt_misc hands a
 * foreign ELF to qemu-<arch>. The handler must have the fix-binary flag (F): the interpreter is
 * opened when it is registered, so it works inside a RUN's root, which has no QEMU in it.
 */

const BINFMT = '/proc/sys/fs/binfmt_misc';
/** Debian's qemu-user-static ships one systemd-binfmt file per architecture here. */
const CONF_DIR = '/usr/lib/binfmt.d';

/** QEMU's name for an OCI architecture. */
const QEMU_ARCH: Record<string, string> = { arm64: 'aarch64', arm: 'arm', amd64: 'x86_64', '386': 'i386', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64le: 'mips64el' };

/** Whether this host runs the platform's binaries itself (its own, or a 32-bit sibling it executes natively). */
export function runsNatively(p: Platform, host: Platform = hostPlatform()): boolean {
  return p.arch === host.arch || (host.arch === 'amd64' && p.arch === '386');
}

export interface HandlerState {
  arch: string;
  qemu: string;
  state: 'ok' | 'missing' | 'disabled' | 'no-fix-binary';
  interpreter?: string;
}

/** What binfmt_misc has for an architecture's QEMU handler. */
export function handlerState(arch: string): HandlerState {
  const qemu = QEMU_ARCH[arch] ?? arch;
  const file = path.join(BINFMT, `qemu-${qemu}`);
  if (!existsSync(file)) return { arch, qemu, state: 'missing' };
  const text = readFileSync(file, 'utf8');
  const interpreter = /^interpreter (.+)$/m.exec(text)?.[1];
  const flags = /^flags: ?(\S*)$/m.exec(text)?.[1] ?? '';
  const state = !/^enabled$/m.test(text) ? 'disabled' : flags.includes('F') ? 'ok' : 'no-fix-binary';
  return { arch, qemu, state, ...(interpreter ? { interpreter } : {}) };
}

/** Why a RUN for this platform cannot run here, in words that say what to do; undefined when it can. */
export function emulationProblem(p: Platform): string | undefined {
  if (runsNatively(p)) return undefined;
  const want = formatPlatform(p);
  if (!existsSync(path.join(BINFMT, 'status'))) {
    return `RUN for ${want} needs QEMU user emulation, and binfmt_misc is not mounted: as root, apt-get install qemu-user-static, then lbuild binfmt --install`;
  }
  const h = handlerState(p.arch);
  if (h.state === 'missing') return `RUN for ${want} needs QEMU user emulation: no binfmt_misc handler for ${h.qemu}; as root, apt-get install qemu-user-static, then lbuild binfmt --install`;
  if (h.state === 'disabled') return `RUN for ${want}: the binfmt_misc handler qemu-${h.qemu} is disabled (echo 1 > ${BINFMT}/qemu-${h.qemu}, as root)`;
  if (h.state === 'no-fix-binary') return `RUN for ${want}: the binfmt_misc handler qemu-${h.qemu} lacks the fix-binary flag (F), so a RUN's root cannot reach ${h.interpreter ?? 'its interpreter'}; as root, lbuild binfmt --install registers it again with F`;
  return undefined;
}

/** Every architecture lbuild can emulate, with its handler's state. */
export function handlerStates(): HandlerState[] {
  return Object.keys(QEMU_ARCH)
    .filter((a) => !runsNatively({ os: 'linux', arch: a }))
    .map(handlerState);
}

/**
 * Register the QEMU handlers of qemu-user-static's binfmt.d files with the fix-binary flag
 * (mounting binfmt_misc first if need be); a handler registered without F is replaced.
 * Returns the architectures registered now.
 */
export async function installHandlers(): Promise<string[]> {
  if (process.getuid?.() !== 0) throw new LbuildError('binfmt --install: registering binfmt_misc handlers needs root');
  if (!existsSync(path.join(BINFMT, 'status'))) {
    const execa = await lazyExeca();
    const r = await execa('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { reject: false, stdin: 'ignore' });
    if (r.exitCode !== 0) throw new LbuildError(`binfmt --install: cannot mount binfmt_misc on ${BINFMT} (${String(r.stderr).trim() || `exit ${r.exitCode}`})`);
  }
  const confs = existsSync(CONF_DIR) ? readdirSync(CONF_DIR).filter((f) => /^qemu-.+\.conf$/.test(f)) : [];
  if (confs.length === 0) throw new LbuildError(`binfmt --install: no QEMU handlers in ${CONF_DIR} (apt-get install qemu-user-static)`);
  const done: string[] = [];
  for (const h of handlerStates()) {
    const conf = confs.find((f) => f === `qemu-${h.qemu}.conf`);
    if (!conf || h.state === 'ok') continue;
    const line = readFileSync(path.join(CONF_DIR, conf), 'utf8').split('\n').find((l) => l.startsWith(':'));
    if (!line) continue;
    const fields = line.split(':');
    // :name:type:offset:magic:mask:interpreter:flags — F added if the file lacks it
    const flags = fields[7] ?? '';
    if (!flags.includes('F')) fields[7] = `${flags}F`;
    if (h.state !== 'missing') writeFileSync(path.join(BINFMT, `qemu-${h.qemu}`), '-1');
    writeFileSync(path.join(BINFMT, 'register'), fields.join(':'));
    done.push(h.arch);
  }
  return done;
}
