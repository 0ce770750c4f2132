import type { Instruction, RunInstr } from '../../dockerfile/instructions.js';
import { dependencyManifests, isRun, runText } from '../shell.js';
import type { Rule, RuleHit } from '../types.js';
import { isBroadCopy, manifestCopiedBefore } from './copy-before-install.js';

// system packages and downloads to absolute paths: nothing of the build context is read
const SYSTEM_INSTALL = /\b(apt-get|apt|apk|yum|dnf|microdnf)\s+(?:-\S+\s+)*(install|add)\b/;
// installs that compile the sources as well (cargo build, gradle build) do need them
const BUILDS_TOO = /\bcargo\s+build\b|\bgradle(w)?\b.*\bbuild\b|\.\/gradlew\b.*\bbuild\b/;

/**
 * A RUN after the broad COPY that plainly does not read the sources: a system package install
 * with no local file, or a dependency install whose manifest was copied before the broad COPY.
 * Build steps (make, go build, npm run build) need the sources and are where they belong.
 */
function needsNoSources(ins: readonly Instruction[], broad: Instruction, r: RunInstr): boolean {
  const t = runText(r);
  if (SYSTEM_INSTALL.test(t) && !/\s\.{0,2}\/?[\w.-]+\.(deb|rpm|apk)\b/.test(t)) return true;
  const manifests = dependencyManifests(t);
  return manifests !== undefined && !BUILDS_TOO.test(t) && manifestCopiedBefore(ins, broad, manifests);
}

export const earlyVolatileCopy: Rule = {
  id: 'LB008',
  severity: 'info',
  title: 'A COPY of the whole context before steps that do not use it: every edit re-runs them',
  scope: 'build',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      const copy = st.instructions.find(isBroadCopy);
      if (!copy) continue;
      const after = st.instructions.slice(st.instructions.indexOf(copy) + 1).filter(isRun);
      const idle = after.filter((r) => needsNoSources(st.instructions, copy, r));
      if (idle.length >= 1) {
        const lines = idle.map((r) => r.line).join(', ');
        out.push({
          line: copy.line,
          column: 1,
          message: `every change in the context re-runs the RUN${idle.length > 1 ? 's' : ''} on line${idle.length > 1 ? 's' : ''} ${lines}, which do${idle.length > 1 ? '' : 'es'} not read the sources`,
          fix: `move ${idle.length > 1 ? 'them' : 'it'} above the COPY on line ${copy.line}`,
        });
      }
    }
    return out;
  },
};
