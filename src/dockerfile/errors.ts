import { LocatedError } from '../errors.js';

/** An error in a Dockerfile, printed as `FILE:LINE: message`. */
export class DockerfileError extends LocatedError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'DockerfileError';
  }
}
