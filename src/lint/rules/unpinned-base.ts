import type { FromInstr } from '../../dockerfile/instructions.js';
import type { Rule, RuleHit } from '../types.js';

export const unpinnedBase: Rule = {
  id: 'LB007',
  severity: 'info',
  title: 'Base image without a pinned tag or digest',
  scope: 'build',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      const f = st.from as FromInstr;
      const img = f.image;
      if (img.toLowerCase() === 'scratch' || ctx.stageNames.has(img.toLowerCase()) || img.includes('$') || img.includes('@sha256:')) continue;
      const slash = img.lastIndexOf('/');
      const colon = img.lastIndexOf(':');
      const tag = colon > slash ? img.slice(colon + 1) : undefined;
      if (tag === undefined || tag === 'latest') {
        out.push({ line: f.line, column: 1, message: `FROM ${img} ${tag ? 'uses :latest' : 'has no tag'}: the base can change under the cache and between machines`, fix: 'pin a version tag, or a digest (image@sha256:…)' });
      }
    }
    return out;
  },
};
