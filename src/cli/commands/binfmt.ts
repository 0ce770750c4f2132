import type { Argv, CommandModule } from 'yargs';
import { handlerStates, installHandlers } from '../../runtime/emulation.js';
import { type GlobalArgs, print } from '../common.js';
import { COMMAND_TEXT } from '../command-list.js';
import { formatTable } from '../table.js';

interface Args extends GlobalArgs {
  install?: boolean;
}

export const binfmtCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.binfmt,
  builder: (y: Argv<GlobalArgs>) => y.option('install', { type: 'boolean', default: false, describe: 'register qemu-user-static\'s handlers with the fix-binary flag (root)' }) as Argv<Args>,
  handler: async (argv) => {
    if (argv.install) {
      const done = await installHandlers();
      print(done.length ? `registered: ${done.join(' ')}` : 'nothing to register: every handler qemu-user-static ships is in place');
    }
    const rows = handlerStates().map((h) => [`linux/${h.arch}`, `qemu-${h.qemu}`, h.state === 'ok' ? 'ready' : h.state === 'no-fix-binary' ? 'registered without F (RUN cannot use it)' : h.state, h.interpreter ?? '']);
    print(formatTable(['PLATFORM', 'HANDLER', 'STATE', 'INTERPRETER'], rows));
  },
};
