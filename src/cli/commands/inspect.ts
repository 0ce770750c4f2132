import type { Argv, CommandModule } from 'yargs';
import { inspectView } from '../../image/views.js';
import { configPlatform, formatPlatform } from '../../oci/platform.js';
import { layerContentSizes } from '../../store/layer-size.js';
import { type GlobalArgs, asArray, openStore, print, printJson } from '../common.js';
import { renderTemplate } from '../gotemplate.js';
import { COMMAND_TEXT } from '../command-list.js';

interface Args extends GlobalArgs {
  images: string[];
  format?: string;
}

export const inspectCommand: CommandModule<GlobalArgs, Args> = {
  ...COMMAND_TEXT.inspect,
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true })
      .option('format', { alias: 'f', type: 'string', describe: 'a Go template, as docker inspect -f ({{.Id}}, {{json .Config}}, {{index .RepoTags 0}})' }) as Argv<Args>,
  handler: async (argv) => {
    const store = await openStore(argv);
    const out = [];
    for (const r of asArray(argv.images)) {
      const img = await store.getImage(r);
      const view = inspectView(img, await layerContentSizes(store, img.config.rootfs.diff_ids));
      // a multi-platform image: named by its index (as Docker's containerd store does), this host's image shown, every platform listed
      const index = await store.getIndex(r);
      out.push(
        index
          ? { ...view, Id: index.digest, RepoTags: index.tags, Descriptor: { mediaType: index.index.mediaType, digest: index.digest, size: await store.content.size(index.digest) }, Platforms: index.images.map((i) => formatPlatform(configPlatform(i.config))) }
          : view,
      );
    }
    if (argv.format !== undefined) {
      const template = argv.format;
      print(out.map((o) => renderTemplate(template, o)).join('\n'));
      return;
    }
    printJson(out);
  },
};
