import type { Rule } from '../types.js';
import { addInsteadOfCopy } from './add-vs-copy.js';
import { aptUpdateAlone } from './apt-update-alone.js';
import { copyBeforeInstall } from './copy-before-install.js';
import { deleteInLaterRun } from './delete-later.js';
import { earlyVolatileCopy } from './early-copy.js';
import { packageCacheLeft } from './package-cache.js';
import { splitRunCostsSpace } from './split-runs.js';
import { unpinnedBase } from './unpinned-base.js';

export const RULES: readonly Rule[] = [
  copyBeforeInstall,
  deleteInLaterRun,
  aptUpdateAlone,
  packageCacheLeft,
  splitRunCostsSpace,
  addInsteadOfCopy,
  unpinnedBase,
  earlyVolatileCopy,
];
