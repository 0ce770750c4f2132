import type { CopyInstr } from '../../dockerfile/instructions.js';
import type { Instruction } from '../../dockerfile/instructions.js';
import { dependencyInstall, dependencyManifests, isRun, runText } from '../shell.js';
import type { Rule, RuleHit } from '../types.js';

/** A COPY of the whole context (or a broad directory) from the build context. */
export function isBroadCopy(i: { kind: string }): i is CopyInstr {
  if (i.kind !== 'COPY' && i.kind !== 'ADD') return false;
  const c = i as CopyInstr;
  return c.from === undefined && c.sources.some(isWholeContext);
}

function isWholeContext(s: string): boolean {
  return s === '.' || s === './' || s === '*' || s === '/' || s === './.';
}

/** Whether a narrow COPY before `at` in the stage copies a file of one of these names from the context. */
export function manifestCopiedBefore(ins: readonly Instruction[], at: Instruction, names: readonly string[]): boolean {
  for (const i of ins) {
    if (i === at) return false;
    if ((i.kind === 'COPY' || i.kind === 'ADD') && i.from === undefined && !i.sources.some(isWholeContext)) {
      const base = (s: string): string => s.replace(/\*$/, '').split('/').pop() ?? '';
      if (i.sources.some((s) => names.includes(base(s)))) return true;
    }
  }
  return false;
}

export const copyBeforeInstall: Rule = {
  id: 'LB001',
  severity: 'warning',
  title: 'COPY of the whole context before a dependency install: every source edit re-runs the install',
  scope: 'build',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      const broad = st.instructions.find(isBroadCopy);
      if (!broad) continue;
      const after = st.instructions.slice(st.instructions.indexOf(broad) + 1);
      for (const i of after) {
        if (!isRun(i)) continue;
        const files = dependencyInstall(runText(i));
        if (!files) continue;
        // the manifest came first already: only the install's place is wrong (LB008 says so)
        if (manifestCopiedBefore(st.instructions, broad, dependencyManifests(runText(i)) ?? [])) continue;
        out.push({
          line: broad.line,
          column: 1,
          message: `line ${broad.line} copies the whole context before the dependency install on line ${i.line}: any source change re-runs the install`,
          fix: `COPY ${files} first, run the install, then COPY the rest`,
        });
        break;
      }
    }
    return out;
  },
};
