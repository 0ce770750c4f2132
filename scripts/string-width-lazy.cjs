// What the bundle gives yargs, cliui and log-update for `string-width`: text of printable ASCII,
// Latin-1 letters and the narrow punctuation lbuild's messages use (dashes, quotes, …, arrows) is
// as wide as it is long; the real package, whose Unicode-property regular expressions take ~20 ms
// to build at load, is loaded only for other text (yargs measures its help on every command).
'use strict';
let real;
const NARROW = /^[\x20-\x7e\xa0-\xa8\xaa-\xac\xaf-\xff\u2010-\u2027\u2190-\u2193]*$/;
module.exports = function stringWidth(text, options) {
  // ambiguous-width characters (…, —, →) are narrow unless a caller asks otherwise
  if (typeof text === 'string' && NARROW.test(text) && options?.ambiguousIsNarrow !== false) return text.length;
  real ??= require('lbuild-real-string-width').default;
  return real(text, options);
};
