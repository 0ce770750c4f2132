import type { CommandModule } from 'yargs';
import { type GlobalArgs, notImplemented } from '../common.js';

/** Commands of the CLI contract that later work fills in; they answer "not implemented yet" (exit 2). */
const PENDING: [string, string][] = [
  ['prune', 'Remove unused data'],
  ['fsck', 'Verify the store'],
];

export const pendingCommands: CommandModule<GlobalArgs, GlobalArgs>[] = PENDING.map(([command, describe]) => ({
  command,
  describe,
  builder: (y) => y.strict(false),
  handler: () => notImplemented(command.split(' ')[0] as string),
}));
