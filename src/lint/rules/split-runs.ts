import { isRun, runText } from '../shell.js';
import type { Rule, RuleHit } from '../types.js';

// package-manager cleanup: caches and build dependencies that the previous RUN left behind
const CLEANUP = /\b(apt-get\s+(clean|autoremove|purge)|apk\s+del|yum\s+clean|dnf\s+clean|npm\s+cache\s+clean|yarn\s+cache\s+clean|pip3?\s+cache\s+purge)\b|rm\s+-\w+\s+(\/var\/lib\/apt\/lists|\/var\/cache|\/root\/\.cache|\/tmp\/\*)/;

export const splitRunCostsSpace: Rule = {
  id: 'LB005',
  severity: 'info',
  title: 'A RUN that cleans package caches left by the RUN before it: the split keeps the garbage',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      const ins = st.instructions;
      for (let k = 1; k < ins.length; k++) {
        const a = ins[k - 1];
        const b = ins[k];
        if (!a || !b || !isRun(a) || !isRun(b)) continue;
        const t = runText(b);
        if (!CLEANUP.test(t)) continue;
        out.push({ line: b.line, column: 1, message: `the RUN on line ${b.line} cleans up after the RUN on line ${a.line} in a separate layer: nothing is saved`, fix: `merge the two RUNs with &&` });
      }
    }
    return out;
  },
};
