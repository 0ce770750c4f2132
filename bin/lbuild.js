#!/usr/bin/env node
// the bundled CLI (npm run build makes it): one file loads much faster than the module tree
import '../dist/lbuild.mjs';
