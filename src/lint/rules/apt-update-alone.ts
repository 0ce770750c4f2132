import { isRun, runText } from '../shell.js';
import type { Rule, RuleHit } from '../types.js';

export const aptUpdateAlone: Rule = {
  id: 'LB003',
  severity: 'warning',
  title: '`apt-get update` in a RUN without an install: the cached index goes stale',
  scope: 'build',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      for (const i of st.instructions.filter(isRun)) {
        const t = runText(i);
        if (/\bapt(-get)?\s+update\b/.test(t) && !/\bapt(-get)?\s+(install|upgrade|dist-upgrade)\b/.test(t)) {
          out.push({ line: i.line, column: 1, message: '`apt-get update` runs alone: a later install uses whatever index this layer cached', fix: 'run `apt-get update && apt-get install -y …` in one RUN' });
        }
      }
    }
    return out;
  },
};
