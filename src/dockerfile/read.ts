import { promises as fsp } from 'node:fs';
import { UsageError } from '../errors.js';

/** A Dockerfile's text; `shown` is how the user named it. Each way it cannot be read says why. */
export async function readDockerfileText(file: string, shown: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new UsageError(`${shown} is a directory: -f takes the Dockerfile itself (e.g. ${shown.replace(/\/+$/, '')}/Dockerfile)`);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`${shown}: no such Dockerfile`);
    if (code === 'EACCES') throw new UsageError(`${shown}: permission denied`);
    throw new UsageError(`${shown}: cannot read the Dockerfile (${(e as Error).message})`);
  }
}
