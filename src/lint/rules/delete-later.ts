import * as path from 'node:path';
import { commands, isRun, removedPaths, runDirs, runText } from '../shell.js';
import { type Rule, type RuleHit, stagesFor } from '../types.js';

/**
 * Whether a RUN writes something at or below `p` (a bare `mkdir` of it writes no bytes), naming it
 * absolutely or relative to the RUN's own working directory.
 */
function writes(text: string, p: string, cwd: string): boolean {
  const rel = cwd.includes('$') ? undefined : path.posix.relative(cwd, p);
  const names = [p, ...(rel && !rel.startsWith('..') ? [rel, `./${rel}`] : [])];
  const quote = (n: string): string => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(^|[\\s=>'"])(${names.map(quote).join('|')})(/|\\s|$|['";&|])`);
  return commands(text).some((c) => re.test(c) && !/^mkdir\b/.test(c));
}

export const deleteInLaterRun: Rule = {
  id: 'LB002',
  severity: 'warning',
  title: 'A path created in one RUN and deleted in a later RUN still ships in the image',
  scope: 'size',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of stagesFor(ctx, 'size')) {
      const runs = st.instructions.filter(isRun);
      const dirs = runDirs(st.instructions);
      runs.forEach((r, idx) => {
        for (const p of removedPaths(runText(r), dirs.get(r))) {
          if (p === '' || p === '/' || p.includes('*')) continue;
          const creator = runs.slice(0, idx).find((e) => writes(runText(e), p, dirs.get(e) ?? '/'));
          if (!creator) continue;
          out.push({
            line: r.line,
            column: 1,
            message: `${p} is written by the RUN on line ${creator.line} and deleted here: the bytes stay in the earlier layer`,
            fix: `create and delete ${p} in the same RUN (or use a multi-stage build)`,
          });
        }
      });
    }
    return out;
  },
};
