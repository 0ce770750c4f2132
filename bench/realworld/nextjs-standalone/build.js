// Stands in for `next build` with output: 'standalone': a server plus its node_modules, and static assets.
const fs = require('fs');
fs.mkdirSync('.next/standalone/node_modules', { recursive: true });
fs.mkdirSync('.next/static/chunks', { recursive: true });
fs.cpSync('node_modules/is-number', '.next/standalone/node_modules/is-number', { recursive: true });
fs.copyFileSync('server.js', '.next/standalone/server.js');
fs.writeFileSync('.next/static/chunks/main.js', 'console.log("chunk")\n');
