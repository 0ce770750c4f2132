import { DOCKER_DEFAULT_ALLOW, DOCKER_DEFAULT_RULES, type SeccompRule } from './seccomp-data.js';

/** The `linux.seccomp` part of an OCI runtime spec (runtime-spec config-linux.md). */
export interface OciSeccomp {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: { index: number; value: number; valueTwo: number; op: string }[] }[];
}

/** Node's process.arch → the Go names the profile's conditions use, and libseccomp's arches. */
const ARCHES: Record<string, { go: string; scmp: string[] }> = {
  x64: { go: 'amd64', scmp: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
  arm64: { go: 'arm64', scmp: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] },
  s390x: { go: 's390x', scmp: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'] },
  riscv64: { go: 'riscv64', scmp: ['SCMP_ARCH_RISCV64'] },
};

function applies(r: SeccompRule, caps: ReadonlySet<string>, arch: string): boolean {
  if (r.caps && !r.caps.some((c) => caps.has(c))) return false;
  if (r.notCaps?.some((c) => caps.has(c))) return false;
  if (r.arches && !r.arches.includes(arch)) return false;
  if (r.notArches?.includes(arch)) return false;
  return true;
}

/**
 * Docker's default seccomp filter for a container holding `caps`, as dockerd computes it: the
 * profile's unconditional list plus the rules whose conditions hold on this machine.
 */
export function defaultSeccomp(caps: readonly string[], nodeArch: string = process.arch): OciSeccomp {
  const arch = ARCHES[nodeArch] ?? { go: nodeArch, scmp: [] };
  const held = new Set(caps);
  const syscalls: OciSeccomp['syscalls'] = [{ names: [...DOCKER_DEFAULT_ALLOW], action: 'SCMP_ACT_ALLOW' }];
  for (const r of DOCKER_DEFAULT_RULES) {
    if (!applies(r, held, arch.go)) continue;
    syscalls.push({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args ? { args: r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: 0, op: a.op })) } : {}),
    });
  }
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, architectures: arch.scmp, syscalls };
}
