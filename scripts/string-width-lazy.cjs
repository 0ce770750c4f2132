// What the bundle gives yargs and cliui for `string-width`: printable ASCII is as wide as it is
// long, and the real package, whose Unicode-property regular expressions take ~20 ms to build at
// load, is loaded only for other text (yargs measures its help on every command).
'use strict';
let real;
module.exports = function stringWidth(text, options) {
  if (typeof text === 'string' && /^[\x20-\x7e]*$/.test(text)) return text.length;
  real ??= require('lbuild-real-string-width').default;
  return real(text, options);
};
