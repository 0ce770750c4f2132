import type { RunInstr } from '../../dockerfile/instructions.js';
import { isRun, runText } from '../shell.js';
import type { Rule, RuleHit } from '../types.js';

const CHECKS: { install: RegExp; clean: RegExp; what: string; fix: string }[] = [
  { install: /\bapt(-get)?\s+install\b/, clean: /rm\s+-[a-z]*r[a-z]*f?\s+\/var\/lib\/apt\/lists|rm\s+-[a-z]*f[a-z]*r\s+\/var\/lib\/apt\/lists/, what: 'apt lists (/var/lib/apt/lists)', fix: 'end the RUN with `&& rm -rf /var/lib/apt/lists/*`, or use RUN --mount=type=cache' },
  { install: /\bapk\s+add\b/, clean: /--no-cache|rm\s+-[a-z]*\s+\/var\/cache\/apk/, what: 'the apk cache', fix: 'use `apk add --no-cache`' },
  { install: /\bpip3?\s+install\b/, clean: /--no-cache-dir|PIP_NO_CACHE_DIR/, what: 'the pip cache', fix: 'use `pip install --no-cache-dir`' },
  { install: /\bnpm\s+(install|ci|i)\b/, clean: /npm\s+cache\s+clean/, what: 'the npm cache', fix: 'add `&& npm cache clean --force`, or use RUN --mount=type=cache,target=/root/.npm' },
  { install: /\byarn(\s+install)?\s*($|--|&&)/, clean: /yarn\s+cache\s+clean/, what: 'the yarn cache', fix: 'add `&& yarn cache clean`, or use RUN --mount=type=cache' },
];

function cacheMounted(i: RunInstr): boolean {
  return i.mounts.some((m) => m.type === 'cache' || m.type === 'tmpfs');
}

export const packageCacheLeft: Rule = {
  id: 'LB004',
  severity: 'warning',
  title: 'Package manager caches left in the layer',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of ctx.stages) {
      for (const i of st.instructions.filter(isRun)) {
        if (cacheMounted(i)) continue;
        const t = runText(i);
        for (const c of CHECKS) {
          if (c.install.test(t) && !c.clean.test(t)) out.push({ line: i.line, column: 1, message: `this RUN leaves ${c.what} in its layer`, fix: c.fix });
        }
      }
    }
    return out;
  },
};
