import type { CopyInstr } from '../../dockerfile/instructions.js';
import type { Rule, RuleHit } from '../types.js';

const ARCHIVE = /\.(tar|tgz|tbz2?|txz|tar\.(gz|bz2|xz|zst))$/i;

export const addInsteadOfCopy: Rule = {
  id: 'LB006',
  severity: 'info',
  title: 'ADD where COPY suffices',
  scope: 'build',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      for (const i of st.instructions) {
        if (i.kind !== 'ADD') continue;
        const c = i as CopyInstr;
        const plain = c.sources.filter((s) => !/^[a-z]+:\/\//i.test(s) && !s.startsWith('git@') && !ARCHIVE.test(s) && !s.startsWith('<<'));
        if (plain.length === c.sources.length && plain.length > 0) {
          out.push({ line: i.line, column: 1, message: `ADD of ${plain.join(' ')}: ADD also extracts archives and fetches URLs, so its effect depends on the file's content`, fix: 'use COPY' });
        }
      }
    }
    return out;
  },
};
