import type { execa as ExecaFn } from 'execa';

let loaded: Promise<typeof ExecaFn> | undefined;

/**
 * execa, imported on first use: most commands (and every cache hit) run no external program, and
 * loading execa costs about as much as starting Node itself.
 */
export function lazyExeca(): Promise<typeof ExecaFn> {
  loaded ??= import('execa').then((m) => m.execa);
  return loaded;
}
