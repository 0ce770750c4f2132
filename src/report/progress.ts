/** Build progress, BuildKit's plain format: `#N name`, `#N <secs> <line>`, `#N DONE 1.2s` / `#N CACHED` / `#N ERROR: msg`. */
export interface Vertex {
  log(line: string): void;
  done(): void;
  cached(reason?: string): void;
  error(message: string): void;
}

export interface Progress {
  vertex(name: string): Vertex;
  warn(message: string): void;
  info(message: string): void;
  /** the build is over: a live view draws its last frame and lets go of the terminal */
  close?(): void;
}

export type ProgressMode = 'plain' | 'tty' | 'json' | 'quiet';

export function chooseMode(requested: string, isTty: boolean): ProgressMode {
  if (requested === 'quiet') return 'quiet';
  // BuildKit's rawjson is its own solve-status stream; lbuild's JSON events stand in for it
  if (requested === 'json' || requested === 'rawjson') return 'json';
  if (requested === 'plain') return 'plain';
  if (requested === 'tty') return 'tty';
  return isTty ? 'tty' : 'plain';
}

export function plainProgress(write: (s: string) => void): Progress {
  let n = 0;
  return {
    vertex(name: string): Vertex {
      const id = ++n;
      const start = process.hrtime.bigint();
      const secs = (): string => (Number(process.hrtime.bigint() - start) / 1e9).toFixed(3);
      write(`#${id} ${name}\n`);
      return {
        log: (line) => write(`#${id} ${secs()} ${line}\n`),
        done: () => write(`#${id} DONE ${Number(secs()).toFixed(1)}s\n\n`),
        cached: (reason) => write(`#${id} CACHED${reason ? ` (${reason})` : ''}\n\n`),
        error: (message) => write(`#${id} ERROR: ${message}\n\n`),
      };
    },
    warn: (message) => write(`WARN: ${message}\n`),
    info: (message) => write(`${message}\n`),
  };
}

/** One JSON object per line, for tools: {"vertex":N,"event":"start"|"log"|"done"|"cached"|"error",...}. */
export function jsonProgress(write: (s: string) => void): Progress {
  let n = 0;
  const emit = (o: Record<string, unknown>): void => write(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
  return {
    vertex(name: string): Vertex {
      const id = ++n;
      const start = Date.now();
      emit({ vertex: id, event: 'start', name });
      return {
        log: (line) => emit({ vertex: id, event: 'log', line }),
        done: () => emit({ vertex: id, event: 'done', durationMs: Date.now() - start }),
        cached: (reason) => emit({ vertex: id, event: 'cached', ...(reason ? { reason } : {}) }),
        error: (message) => emit({ vertex: id, event: 'error', message }),
      };
    },
    warn: (message) => emit({ event: 'warning', message }),
    info: (message) => emit({ event: 'info', message }),
  };
}
