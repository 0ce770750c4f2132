const isNumber = require('is-number');
if (process.argv[2] === 'check') console.log('server ok', isNumber(process.env.PORT));
else require('http').createServer((q, r) => r.end('hello\n')).listen(Number(process.env.PORT));
