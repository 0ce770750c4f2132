import { dependencyInstall, isRun, runText } from '../shell.js';
import type { Rule, RuleHit } from '../types.js';
import { isBroadCopy } from './copy-before-install.js';

const EXPENSIVE = /\b(apt-get|apk|yum|dnf|pip3?|curl|wget|make|cmake|gcc|g\+\+|go\s+build|cargo|mvn|gradle|npm\s+run|tsc|webpack|git\s+clone)\b/;

export const earlyVolatileCopy: Rule = {
  id: 'LB008',
  severity: 'info',
  title: 'A frequently-changing COPY early in the file, followed by expensive steps',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      const copy = st.instructions.find(isBroadCopy);
      if (!copy) continue;
      const after = st.instructions.slice(st.instructions.indexOf(copy) + 1).filter(isRun);
      // installs are LB001's finding; this one is about other expensive steps the COPY re-runs
      const others = after.filter((r) => !dependencyInstall(runText(r)) && EXPENSIVE.test(runText(r)));
      if (others.length >= 1) {
        out.push({ line: copy.line, column: 1, message: `every change in the context re-runs the ${others.length} RUN steps after line ${copy.line}`, fix: 'move steps that do not need the sources above this COPY, or copy only what they need' });
      }
    }
    return out;
  },
};
