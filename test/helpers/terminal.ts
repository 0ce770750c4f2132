/*
 * A small terminal screen for the tests of the live view: it applies what a real terminal does
 * with the bytes lbuild writes (text, CR, LF, cursor up and down, erase line or its rest, column 0) and
 * ignores colours and modes. What is left on it is what a user would see at the end.
 */
export function finalScreen(raw: string): string[] {
  const screen: string[] = [''];
  let row = 0;
  let col = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\x1b') {
      const m = /^\x1b\[(\??)([0-9;]*)([A-Za-z])/.exec(raw.slice(i, i + 16));
      if (m) {
        const [all, , n, cmd] = m;
        if (cmd === 'A') row = Math.max(0, row - Number(n || 1));
        else if (cmd === 'B') {
          row += Number(n || 1);
          while (screen.length <= row) screen.push('');
        }
        else if (cmd === 'K') screen[row] = n === '2' ? '' : (screen[row] ?? '').slice(0, col);
        else if (cmd === 'G') col = 0;
        i += (all as string).length - 1;
      }
      continue;
    }
    if (c === '\r') col = 0;
    else if (c === '\n') {
      row++;
      if (row >= screen.length) screen.push('');
      col = 0;
    } else {
      const line = screen[row] ?? '';
      screen[row] = line.slice(0, col).padEnd(col) + c + line.slice(col + 1);
      col++;
    }
  }
  return screen;
}

/** The frames a live view drew: each is written between synchronized-output marks. */
export function frames(raw: string): string[] {
  return raw.split('\x1b[?2026h').slice(1).map((f) => f.split('\x1b[?2026l')[0] ?? '');
}
