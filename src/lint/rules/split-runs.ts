import type { RunInstr } from '../../dockerfile/instructions.js';
import { type Residue, cleaned, created, describeResidue } from '../residue.js';
import { isRun, runText } from '../shell.js';
import { type Rule, type RuleHit, stagesFor } from '../types.js';

/**
 * A cleanup saves bytes only in the RUN that made them: judged per leftover, across the stage.
 * A RUN that installs and cleans its own apt lists is fine whatever RUN comes before it; a RUN
 * that purges packages another RUN installed is a finding that names where they came from.
 */
export const splitRunCostsSpace: Rule = {
  id: 'LB005',
  severity: 'info',
  title: 'A RUN that cleans up what an earlier RUN left: the bytes stay in the earlier layer',
  scope: 'size',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of stagesFor(ctx, 'size')) {
      const runs = st.instructions.filter(isRun).map((r) => ({ r, made: created(runText(r)), gone: cleaned(runText(r)) }));
      runs.forEach(({ r, made, gone }, k) => {
        const byCreator = new Map<RunInstr, Residue[]>();
        for (const what of gone) {
          if (made.has(what)) continue; // its own leftovers: the cleanup works
          // the latest earlier RUN that made it and did not clean it itself
          const from = runs.slice(0, k).reverse().find((e) => e.made.has(what) && !e.gone.has(what));
          if (!from) continue;
          byCreator.set(from.r, [...(byCreator.get(from.r) ?? []), what]);
        }
        for (const [creator, what] of byCreator) {
          // `pkg:*` (autoremove) says nothing more when packages are named
          const named = what.filter((w) => w !== 'pkg:*' || what.length === 1).map(describeResidue);
          const packages = what.some((w) => w.startsWith('pkg:'));
          out.push({
            line: r.line,
            column: 1,
            message: `line ${r.line} ${packages ? 'purges' : 'removes'} ${named.join(', ')} that the RUN on line ${creator.line} ${packages ? 'installed' : 'left'}, in a separate layer: the bytes stay in line ${creator.line}'s layer`,
            fix: packages ? `install and purge in the same RUN as line ${creator.line} (or build in a separate stage)` : `clean up at the end of the RUN on line ${creator.line}, with &&`,
          });
        }
      });
    }
    return out;
  },
};
