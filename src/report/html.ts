import type { BuildReport } from './build-report.js';
import { humanSize } from '../util/fsx.js';

/** One layer of the image for the size bars: its history size and the bytes later layers hide. */
export interface LayerRow {
  index: number;
  diffId: string;
  size: number;
  wastedBytes: number;
  line: number | null;
  instruction: string;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}

const CSS = `
:root{--hit:#2e7d32;--miss:#c77700;--failed:#c62828;--bar:#5c6bc0;--waste:#e53935;--fg:#1b1b1b;--muted:#5f6368;--bg:#fff;--line:#e0e0e0}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:16px;max-width:1100px}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:12px 0 4px;color:var(--muted)}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dl.summary dt{color:var(--muted)}dl.summary dd{margin:0;overflow-wrap:anywhere}
.kpi{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.kpi div{border:1px solid var(--line);border-radius:6px;padding:6px 10px}.kpi b{display:block;font-size:18px}
.waterfall{border-left:1px solid var(--line)}.step{display:grid;grid-template-columns:minmax(120px,38%) 1fr max-content;align-items:center;gap:8px;padding:2px 0}
.step .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-family:ui-monospace,Menlo,monospace;font-size:12px}
.step .track{position:relative;height:14px;background:#f5f5f5;border-radius:3px}.step .bar{position:absolute;top:0;bottom:0;min-width:3px;border-radius:3px}
.step.hit .bar{background:var(--hit)}.step.miss .bar{background:var(--miss)}.step.failed .bar{background:var(--failed)}
.step .dur{font-variant-numeric:tabular-nums;color:var(--muted);font-size:12px}
.legend{display:flex;gap:14px;font-size:12px;color:var(--muted);margin-top:6px}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td code{font-size:12px;overflow-wrap:anywhere}.r-hit{color:var(--hit)}.r-miss{color:var(--miss)}.r-failed{color:var(--failed);font-weight:600}
.layer{display:grid;grid-template-columns:minmax(120px,38%) 1fr max-content;gap:8px;align-items:center;padding:2px 0}
.layer .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:12px;font-family:ui-monospace,Menlo,monospace}
.layer .track{height:14px;background:#f5f5f5;border-radius:3px;overflow:hidden}.layer .bar{height:100%;background:var(--bar);display:flex;justify-content:flex-end;min-width:2px}.layer .waste{height:100%;background:var(--waste)}
.layer .size{font-size:12px;color:var(--muted);font-variant-numeric:tabular-nums}
@media (max-width:600px){.step,.layer{grid-template-columns:1fr max-content}.step .label,.layer .label{grid-column:1/-1;white-space:normal}}
`;

/**
 * The build report as one self-contained HTML file: no scripts, no fetches. A waterfall of the
 * steps per stage (bars colored hit / miss / failed, the miss reason as a tooltip and in the
 * table), the layer sizes with their wasted share, and the summary.
 */
export function renderHtml(rep: BuildReport, layers: readonly LayerRow[] | undefined, title: string): string {
  const total = Math.max(1, rep.durationMs, ...rep.steps.map((s) => s.startMs + s.durationMs));
  const stages = [...new Set(rep.steps.map((s) => s.stage))];
  const klass = (s: BuildReport['steps'][number]): string => (s.status === 'failed' ? 'failed' : s.cache);
  const pct = (x: number): string => `${Math.min(100, Math.max(0, (x / total) * 100)).toFixed(2)}%`;
  const out: string[] = [];
  out.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`);
  out.push(`<title>lbuild report: ${esc(title)}</title><style>${CSS}</style></head><body>`);
  out.push(`<header><h1>Build report: ${esc(title)}</h1><dl class="summary">`);
  out.push(`<dt>Image</dt><dd><code>${esc(rep.image.id)}</code></dd>`);
  out.push(`<dt>Tags</dt><dd>${rep.image.tags.length ? rep.image.tags.map(esc).join(', ') : '(none)'}</dd>`);
  out.push(`<dt>Finished</dt><dd>${esc(rep.finished ?? '')}</dd><dt>Took</dt><dd>${secs(rep.durationMs)}</dd>`);
  out.push(`<dt>Result</dt><dd>${rep.failed ? '<span class="r-failed">failed</span>' : 'built'}</dd></dl>`);
  out.push(`<div class="kpi"><div id="hit-ratio">Cache hits<b>${rep.summary.hits}/${rep.summary.steps} (${Math.round(rep.summary.hitRatio * 100)}%)</b></div>`);
  out.push(`<div id="time-saved">Time saved by the cache<b>≈ ${secs(rep.summary.savedMs)}</b></div>`);
  out.push(`<div>Misses<b>${rep.summary.misses}</b></div></div></header>`);

  out.push(`<section id="timeline" aria-label="Timeline"><h2>Timeline</h2>`);
  for (const st of stages) {
    out.push(`<h3>${esc(st)}</h3><div class="waterfall">`);
    for (const s of rep.steps.filter((x) => x.stage === st)) {
      const tip = `${s.status === 'failed' ? 'failed' : s.cache}${s.reason ? `: ${s.reason}` : ''} (${secs(s.durationMs)})`;
      out.push(
        `<div class="step ${klass(s)}" data-stage="${esc(s.stage)}" data-index="${s.index}" data-line="${s.line}" title="${esc(tip)}">` +
          `<span class="label">[${esc(s.stage)} ${s.index}/${s.total}] ${esc(s.instruction)}</span>` +
          `<span class="track"><span class="bar" style="left:${pct(s.startMs)};width:${pct(s.durationMs)}"></span></span>` +
          `<span class="dur">${secs(s.durationMs)}</span></div>`,
      );
    }
    out.push(`</div>`);
  }
  out.push(`<div class="legend"><span><i style="background:var(--hit)"></i>cache hit</span><span><i style="background:var(--miss)"></i>cache miss</span><span><i style="background:var(--failed)"></i>failed</span></div>`);
  out.push(`<h3>Steps</h3><table id="steps"><thead><tr><th>Step</th><th class="num">Line</th><th>Result</th><th>Why it missed</th><th class="num">Time</th><th class="num">Layer</th></tr></thead><tbody>`);
  for (const s of rep.steps) {
    out.push(
      `<tr class="${klass(s)}"><td><code>[${esc(s.stage)} ${s.index}/${s.total}] ${esc(s.instruction)}</code></td><td class="num">${s.line}</td>` +
        `<td class="r-${klass(s)}">${klass(s)}</td><td>${esc(s.reason ?? '')}</td><td class="num">${secs(s.durationMs)}</td>` +
        `<td class="num">${s.layer ? humanSize(s.layer.size) : ''}</td></tr>`,
    );
  }
  out.push(`</tbody></table></section>`);

  if (layers && layers.length) {
    const max = Math.max(1, ...layers.map((l) => l.size));
    const wasted = layers.reduce((n, l) => n + l.wastedBytes, 0);
    out.push(`<section id="layers" aria-label="Layers"><h2>Layers</h2><p>${layers.length} layers, ${humanSize(layers.reduce((n, l) => n + l.size, 0))}; ${humanSize(wasted)} of it hidden by later layers (red).</p>`);
    for (const l of layers) {
      const w = l.size ? Math.min(100, (l.wastedBytes / l.size) * 100) : 0;
      const label = `${l.line !== null ? `line ${l.line}: ` : ''}${l.instruction}`;
      out.push(
        `<div class="layer" data-index="${l.index}" data-size="${l.size}" title="${esc(`${label}: ${humanSize(l.size)}, ${humanSize(l.wastedBytes)} wasted`)}">` +
          `<span class="label">${esc(label)}</span><span class="track"><span class="bar" style="width:${((l.size / max) * 100).toFixed(2)}%"><span class="waste" style="width:${w.toFixed(2)}%"></span></span></span>` +
          `<span class="size">${humanSize(l.size)}</span></div>`,
      );
    }
    out.push(`<table id="layer-table"><thead><tr><th class="num">#</th><th>Made by</th><th class="num">Size (bytes)</th><th class="num">Wasted (bytes)</th><th>Diff ID</th></tr></thead><tbody>`);
    for (const l of layers) {
      out.push(`<tr data-diff-id="${esc(l.diffId)}"><td class="num">${l.index}</td><td><code>${esc(`${l.line !== null ? `line ${l.line}: ` : ''}${l.instruction}`)}</code></td><td class="num size-bytes">${l.size}</td><td class="num">${l.wastedBytes}</td><td><code>${esc(l.diffId.slice(0, 19))}</code></td></tr>`);
    }
    out.push(`</tbody></table></section>`);
  }
  out.push(`<footer><p style="color:var(--muted);font-size:12px">Made by lbuild. Hover a bar for the cache result and reason; the tables hold the same data.</p></footer></body></html>`);
  return `${out.join('\n')}\n`;
}
