import type { RunInstr } from '../../dockerfile/instructions.js';
import { copiedFromContext, isRun, liveBranches, runText } from '../shell.js';
import { type LintContext, type LintStage, type Rule, type RuleHit, stagesFor } from '../types.js';

const CHECKS: { install: RegExp; clean: RegExp; what: string; fix: string }[] = [
  { install: /\bapt(-get)?\s+install\b/, clean: /rm\s+-[a-z]*r[a-z]*f?\s+\/var\/lib\/apt\/lists|rm\s+-[a-z]*f[a-z]*r\s+\/var\/lib\/apt\/lists/, what: 'apt lists (/var/lib/apt/lists)', fix: 'end the RUN with `&& rm -rf /var/lib/apt/lists/*`, or use RUN --mount=type=cache' },
  { install: /\bapk\s+add\b/, clean: /--no-cache|rm\s+-[a-z]*\s+\/var\/cache\/apk/, what: 'the apk cache', fix: 'use `apk add --no-cache`' },
  { install: /\bpip3?\s+install\b/, clean: /--no-cache-dir|PIP_NO_CACHE_DIR/, what: 'the pip cache', fix: 'use `pip install --no-cache-dir`' },
  { install: /\bnpm\s+(install|ci|i)\b/, clean: /npm\s+cache\s+clean/, what: 'the npm cache', fix: 'add `&& npm cache clean --force`, or use RUN --mount=type=cache,target=/root/.npm' },
  { install: /\byarn(\s+install)?\s*($|--|&&|;|\\)/, clean: /yarn\s+cache\s+clean/, what: 'the yarn cache', fix: 'add `&& yarn cache clean`, or use RUN --mount=type=cache' },
];

const APT_INSTALL = /\bapt(-get)?\s+(?:-\S+\s+)*(install|upgrade|dist-upgrade)\b/;
const DEBS_CLEANED = /\bapt(-get)?\s+(?:-\S+\s+)*(clean|autoclean)\b|rm\s+-[a-z]*\s+[^;&|]*\/var\/cache\/apt/;

function cacheMounted(i: RunInstr): boolean {
  return i.mounts.some((m) => m.type === 'cache' || m.type === 'tmpfs');
}

/** The RUN's text without the `if [ -f FILE ]` branches that cannot run (FILE known from the context). */
function liveText(ctx: LintContext, st: LintStage, i: RunInstr): string {
  const context = ctx.context;
  return liveBranches(runText(i), (file) => (context === undefined ? undefined : copiedFromContext(st.instructions, i, file, context)));
}

/**
 * Whether apt keeps its downloaded .deb files in this stage: the base image (when the store has
 * it) lacks Docker's docker-clean apt config, or a RUN before removed it.
 */
function keepsDebs(ctx: LintContext, st: LintStage, before: RunInstr): { keeps: boolean; why: string } {
  const removed = st.instructions.slice(0, st.instructions.indexOf(before)).some((i) => isRun(i) && /\brm\b[^;&|]*docker-clean/.test(runText(i)));
  if (removed) return { keeps: true, why: 'an earlier RUN removed /etc/apt/apt.conf.d/docker-clean' };
  const base = ctx.baseOf(st);
  if (base && !base.aptDockerClean) return { keeps: true, why: `the base image ${base.ref} has no /etc/apt/apt.conf.d/docker-clean` };
  return { keeps: false, why: '' };
}

export const packageCacheLeft: Rule = {
  id: 'LB004',
  severity: 'warning',
  title: 'Package manager caches left in the layer',
  scope: 'size',
  check(ctx) {
    const out: RuleHit[] = [];
    for (const st of stagesFor(ctx, 'size')) {
      for (const i of st.instructions.filter(isRun)) {
        if (cacheMounted(i)) continue;
        const t = liveText(ctx, st, i);
        for (const c of CHECKS) {
          if (c.install.test(t) && !c.clean.test(t)) out.push({ line: i.line, column: 1, message: `this RUN leaves ${c.what} in its layer`, fix: c.fix });
        }
        if (APT_INSTALL.test(t) && !DEBS_CLEANED.test(t)) {
          const { keeps, why } = keepsDebs(ctx, st, i);
          if (keeps) out.push({ line: i.line, column: 1, message: `this RUN leaves the downloaded .deb files in /var/cache/apt/archives: ${why}`, fix: 'end the RUN with `&& apt-get clean`, or use RUN --mount=type=cache,target=/var/cache/apt' });
        }
      }
    }
    return out;
  },
};
