import { createLogUpdate } from 'log-update';
import type { Progress, Vertex } from './progress.js';

/*
 * The terminal view, after BuildKit's: a header with the build's clock and step count, each
 * running step with its own clock (ticking while it prints nothing), its miss reason and its last
 * six output lines; finished steps scroll up as one line each, their miss reasons kept under them;
 * a failed step leaves a box with its last lines. log-update redraws the live part in place.
 */

const LIVE_LINES = 6;
const BOX_LINES = 10;
const TICK_MS = 200;

const dim = (s: string): string => `\x1b[2m${s}\x1b[22m`;
const green = (s: string): string => `\x1b[32m${s}\x1b[39m`;
const cyan = (s: string): string => `\x1b[36m${s}\x1b[39m`;
const red = (s: string): string => `\x1b[31m${s}\x1b[39m`;
const yellow = (s: string): string => `\x1b[33m${s}\x1b[39m`;

interface Step {
  name: string;
  start: number;
  reason?: string;
  tail: string[];
}

/** A stream that can redraw: stderr of a terminal, or a pseudo-terminal in the tests. */
export interface TtyStream extends NodeJS.WritableStream {
  columns?: number;
  rows?: number;
}

export function ttyView(stream: TtyStream): Progress {
  // a terminal that reports no size (0x0, as a bare pseudo-terminal does) gets log-update's defaults
  const sized = {
    isTTY: true,
    write: (chunk: string): boolean => stream.write(chunk),
    get columns(): number | undefined { return stream.columns || undefined; },
    get rows(): number | undefined { return stream.rows || undefined; },
  } as unknown as NodeJS.WriteStream;
  const live = createLogUpdate(sized, { defaultWidth: 100, defaultHeight: 40 });
  const began = Date.now();
  const running: Step[] = [];
  let started = 0;
  let finished = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const width = (): number => Math.max(40, (stream.columns || 100) - 1);
  const fit = (s: string, w = width()): string => (s.length > w ? `${s.slice(0, w - 1)}…` : s);
  const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
  /** `left` and a right-aligned time on one line of the terminal's width */
  const row = (left: string, time: string, paint: (s: string) => string = (s) => s): string => {
    const w = width();
    const l = fit(left, w - time.length - 1);
    return `${paint(l)}${' '.repeat(Math.max(1, w - l.length - time.length))}${time}`;
  };

  const render = (): void => {
    const now = Date.now();
    const lines = [`[+] Building ${secs(now - began)} (${finished}/${started})`];
    for (const s of running) {
      lines.push(row(` => ${s.name}`, secs(now - s.start), (t) => `\x1b[34m${t}\x1b[39m`));
      if (s.reason) lines.push(yellow(fit(` => => ${s.reason}`)));
      for (const t of s.tail.slice(-LIVE_LINES)) lines.push(dim(fit(` => => # ${t}`)));
    }
    live(lines.join('\n'));
  };
  const tick = (): void => {
    if (running.length && !timer) {
      timer = setInterval(render, TICK_MS);
      timer.unref();
    }
    if (!running.length && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  /** Text that stays: written above the live part, which is drawn again below it. */
  const persist = (text: string): void => {
    live.clear();
    stream.write(`${text}\n`);
    render();
  };

  return {
    vertex(name: string): Vertex {
      const s: Step = { name, start: Date.now(), tail: [] };
      started++;
      running.push(s);
      tick();
      render();
      const finish = (line: string, after: string[] = []): void => {
        running.splice(running.indexOf(s), 1);
        finished++;
        tick();
        persist([line, ...(s.reason ? [yellow(fit(`    ${s.reason}`))] : []), ...after].join('\n'));
      };
      return {
        log: (line) => {
          // a miss reason is the answer to "why did this run?": it stays with the step
          if (line.startsWith('cache miss: ')) s.reason = line;
          else s.tail.push(line.replace(/\s+$/, ''));
          if (s.tail.length > BOX_LINES) s.tail.shift();
          render();
        },
        done: () => finish(row(` => ${name}`, secs(Date.now() - s.start), green)),
        cached: (reason) => finish(cyan(fit(` => CACHED ${name}${reason ? ` (${reason})` : ''}`))),
        error: (message) => {
          // the error in full: it is what the user came for (the terminal wraps it)
          const box = ['------', ` > ${name}:`, ...s.tail.slice(-BOX_LINES).map((t) => fit(` > ${t}`)), '------', red(`ERROR: ${message}`)];
          finish(row(` => ERROR ${name}`, secs(Date.now() - s.start), red), box);
        },
      };
    },
    warn: (message) => persist(`${yellow('WARN')} ${message}`),
    info: (message) => persist(message),
    close: () => {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      render();
      live.done();
    },
  };
}
