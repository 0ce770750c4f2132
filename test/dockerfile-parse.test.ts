import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DockerfileError } from '../src/dockerfile/errors.js';
import type { Instruction } from '../src/dockerfile/instructions.js';
import { parseDockerfile } from '../src/dockerfile/parse.js';

const P = (src: string): Instruction[] => parseDockerfile(src).instructions;
const one = (src: string): Instruction => {
  const all = P(`FROM scratch\n${src}`);
  return all[1] as Instruction;
};
/** strip positions/text so cases compare only the typed content */
function bare(i: Instruction): Record<string, unknown> {
  const { line: _l, endLine: _e, text: _t, ...rest } = i as Instruction & Record<string, unknown>;
  return rest;
}
function fails(src: string, re: RegExp, line?: number): void {
  assert.throws(
    () => parseDockerfile(src),
    (e: unknown) => {
      assert.ok(e instanceof DockerfileError, `expected a DockerfileError, got ${String(e)}`);
      assert.match(e.message, re);
      if (line !== undefined) assert.equal(e.line, line);
      assert.match(e.message, /^Dockerfile:\d+: /);
      return true;
    },
  );
}

const cases: [string, string, Record<string, unknown>][] = [
  // FROM
  ['FROM image', 'FROM busybox', { kind: 'FROM', image: 'busybox' }],
  ['FROM AS lowercases the stage name', 'FROM busybox AS Build', { kind: 'FROM', image: 'busybox', stageName: 'build' }],
  ['FROM as (lowercase keyword)', 'FROM busybox as b', { kind: 'FROM', image: 'busybox', stageName: 'b' }],
  ['FROM --platform', 'FROM --platform=$BUILDPLATFORM golang:1.22 AS b', { kind: 'FROM', image: 'golang:1.22', stageName: 'b', platform: '$BUILDPLATFORM' }],
  ['FROM with digest', `FROM busybox@sha256:${'a'.repeat(64)}`, { kind: 'FROM', image: `busybox@sha256:${'a'.repeat(64)}` }],
  ['FROM variable kept unexpanded by the parser', 'FROM ${BASE}:${TAG}', { kind: 'FROM', image: '${BASE}:${TAG}' }],
  ['from lowercase keyword', 'from busybox', { kind: 'FROM', image: 'busybox' }],
  // RUN
  ['RUN shell form keeps quotes and spacing', 'RUN echo "a   b"  \'c\'', { kind: 'RUN', cmd: { form: 'shell', text: 'echo "a   b"  \'c\'' }, heredocs: [], mounts: [] }],
  ['RUN exec form is parsed as JSON', 'RUN ["echo", "a b", "\\u0041\\t$HOME"]', { kind: 'RUN', cmd: { form: 'exec', args: ['echo', 'a b', 'A\t$HOME'] }, heredocs: [], mounts: [] }],
  ['RUN exec form with one element', 'RUN ["true"]', { kind: 'RUN', cmd: { form: 'exec', args: ['true'] }, heredocs: [], mounts: [] }],
  ["RUN single-quoted JSON is shell form", "RUN ['echo', 'x']", { kind: 'RUN', cmd: { form: 'shell', text: "['echo', 'x']" }, heredocs: [], mounts: [] }],
  ['RUN unterminated JSON is shell form', 'RUN ["echo", "x"', { kind: 'RUN', cmd: { form: 'shell', text: '["echo", "x"' }, heredocs: [], mounts: [] }],
  ['RUN JSON of non-strings is shell form', 'RUN [1, 2]', { kind: 'RUN', cmd: { form: 'shell', text: '[1, 2]' }, heredocs: [], mounts: [] }],
  ['RUN continuation joins lines', 'RUN echo a \\\n    b', { kind: 'RUN', cmd: { form: 'shell', text: 'echo a     b' }, heredocs: [], mounts: [] }],
  ['RUN comment lines inside a continuation are dropped', 'RUN echo a \\\n# note\n  && echo b', { kind: 'RUN', cmd: { form: 'shell', text: 'echo a   && echo b' }, heredocs: [], mounts: [] }],
  ['RUN empty lines inside a continuation are dropped', 'RUN echo a \\\n\n  b', { kind: 'RUN', cmd: { form: 'shell', text: 'echo a   b' }, heredocs: [], mounts: [] }],
  ['RUN continuation with trailing spaces after the escape', 'RUN echo a \\  \n b', { kind: 'RUN', cmd: { form: 'shell', text: 'echo a  b' }, heredocs: [], mounts: [] }],
  ['RUN --network=none', 'RUN --network=none wget x', { kind: 'RUN', cmd: { form: 'shell', text: 'wget x' }, heredocs: [], mounts: [], network: 'none' }],
  ['RUN --mount=type=cache', 'RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked pip install x', {
    kind: 'RUN', cmd: { form: 'shell', text: 'pip install x' }, heredocs: [],
    mounts: [{ type: 'cache', options: { target: '/root/.cache', id: 'pip', sharing: 'locked' } }],
  }],
  ['RUN --mount defaults to bind; dst/src synonyms', 'RUN --mount=dst=/src,src=app,from=build ls', {
    kind: 'RUN', cmd: { form: 'shell', text: 'ls' }, heredocs: [], mounts: [{ type: 'bind', options: { target: '/src', source: 'app', from: 'build' } }],
  }],
  ['RUN --mount=type=secret', 'RUN --mount=type=secret,id=tok cat /run/secrets/tok', {
    kind: 'RUN', cmd: { form: 'shell', text: 'cat /run/secrets/tok' }, heredocs: [], mounts: [{ type: 'secret', options: { id: 'tok' } }],
  }],
  ['RUN two mounts', 'RUN --mount=type=tmpfs,target=/t --mount=type=secret,id=a true', {
    kind: 'RUN', cmd: { form: 'shell', text: 'true' }, heredocs: [], mounts: [{ type: 'tmpfs', options: { target: '/t' } }, { type: 'secret', options: { id: 'a' } }],
  }],
  ['RUN heredoc alone: the body is the script', 'RUN <<EOF\necho hi\necho there\nEOF', {
    kind: 'RUN', cmd: { form: 'shell', text: 'echo hi\necho there' }, mounts: [],
    heredocs: [{ name: 'EOF', content: 'echo hi\necho there\n', quoted: false, stripTabs: false }],
  }],
  ['RUN <<- strips leading tabs', 'RUN <<-EOT\n\techo hi\n\tEOT', {
    kind: 'RUN', cmd: { form: 'shell', text: 'echo hi' }, mounts: [],
    heredocs: [{ name: 'EOT', content: 'echo hi\n', quoted: false, stripTabs: true }],
  }],
  ['RUN quoted heredoc delimiter is recorded', "RUN <<'EOF'\necho $HOME\nEOF", {
    kind: 'RUN', cmd: { form: 'shell', text: 'echo $HOME' }, mounts: [],
    heredocs: [{ name: 'EOF', content: 'echo $HOME\n', quoted: true, stripTabs: false }],
  }],
  ['RUN double-quoted heredoc delimiter', 'RUN <<"EOF"\nx\nEOF', {
    kind: 'RUN', cmd: { form: 'shell', text: 'x' }, mounts: [], heredocs: [{ name: 'EOF', content: 'x\n', quoted: true, stripTabs: false }],
  }],
  ['RUN command reading a heredoc goes to the shell whole', 'RUN python3 <<PY\nprint(1)\nPY', {
    kind: 'RUN', cmd: { form: 'shell', text: 'python3 <<PY\nprint(1)\nPY' }, mounts: [],
    heredocs: [{ name: 'PY', content: 'print(1)\n', quoted: false, stripTabs: false }],
  }],
  ['RUN two heredocs', 'RUN <<A cat >/a && <<B cat >/b\n1\nA\n2\nB', {
    kind: 'RUN', cmd: { form: 'shell', text: '<<A cat >/a && <<B cat >/b\n1\nA\n2\nB' }, mounts: [],
    heredocs: [{ name: 'A', content: '1\n', quoted: false, stripTabs: false }, { name: 'B', content: '2\n', quoted: false, stripTabs: false }],
  }],
  ['RUN << inside quotes is not a heredoc', 'RUN echo "<<EOF"', { kind: 'RUN', cmd: { form: 'shell', text: 'echo "<<EOF"' }, heredocs: [], mounts: [] }],
  // CMD / ENTRYPOINT / SHELL
  ['CMD exec form', 'CMD ["/bin/sh", "-c", "echo hi"]', { kind: 'CMD', cmd: { form: 'exec', args: ['/bin/sh', '-c', 'echo hi'] } }],
  ['CMD shell form', 'CMD echo $HOME', { kind: 'CMD', cmd: { form: 'shell', text: 'echo $HOME' } }],
  ['CMD empty exec form', 'CMD []', { kind: 'CMD', cmd: { form: 'exec', args: [] } }],
  ['ENTRYPOINT exec form', 'ENTRYPOINT ["/bin/app", "--flag"]', { kind: 'ENTRYPOINT', cmd: { form: 'exec', args: ['/bin/app', '--flag'] } }],
  ['ENTRYPOINT shell form', 'ENTRYPOINT exec app', { kind: 'ENTRYPOINT', cmd: { form: 'shell', text: 'exec app' } }],
  ['SHELL JSON', 'SHELL ["/bin/bash", "-euo", "pipefail", "-c"]', { kind: 'SHELL', shell: ['/bin/bash', '-euo', 'pipefail', '-c'] }],
  // ENV / LABEL / ARG
  ['ENV key=value pairs keep quotes for expansion', 'ENV a=b c="d e" f=g\\ h', { kind: 'ENV', pairs: [{ key: 'a', value: 'b' }, { key: 'c', value: '"d e"' }, { key: 'f', value: 'g\\ h' }] }],
  ['ENV legacy form takes the rest of the line', 'ENV LEGACY some value  here', { kind: 'ENV', pairs: [{ key: 'LEGACY', value: 'some value  here' }] }],
  ['ENV legacy form with quotes', 'ENV x "a b"', { kind: 'ENV', pairs: [{ key: 'x', value: '"a b"' }] }],
  ['ENV with $(...) kept literally', 'ENV X=$(date)', { kind: 'ENV', pairs: [{ key: 'X', value: '$(date)' }] }],
  ['ENV value with = inside', 'ENV URL=http://h/?a=b', { kind: 'ENV', pairs: [{ key: 'URL', value: 'http://h/?a=b' }] }],
  ['ENV multi-line', 'ENV A=1 \\\n    B=2', { kind: 'ENV', pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '2' }] }],
  ['LABEL quoted key and value', 'LABEL "c d"="e f" version=1.0', { kind: 'LABEL', pairs: [{ key: '"c d"', value: '"e f"' }, { key: 'version', value: '1.0' }] }],
  ['LABEL single quotes', "LABEL a='$not'", { kind: 'LABEL', pairs: [{ key: 'a', value: "'$not'" }] }],
  ['ARG several per line', 'ARG A=1 B C="x y"', { kind: 'ARG', args: [{ name: 'A', default: '1' }, { name: 'B' }, { name: 'C', default: '"x y"' }] }],
  ['ARG empty default', 'ARG E=', { kind: 'ARG', args: [{ name: 'E', default: '' }] }],
  // COPY / ADD
  ['COPY simple', 'COPY a b /dst/', { kind: 'COPY', sources: ['a', 'b'], dest: '/dst/', heredocs: [], link: false, parents: false, exclude: [], keepGitDir: false }],
  ['COPY all flags', 'COPY --from=build --chown=1000:1000 --chmod=0755 --link a /b', {
    kind: 'COPY', sources: ['a'], dest: '/b', heredocs: [], from: 'build', chown: '1000:1000', chmod: '0755', link: true, parents: false, exclude: [], keepGitDir: false,
  }],
  ['COPY --link=false', 'COPY --link=false a /b', { kind: 'COPY', sources: ['a'], dest: '/b', heredocs: [], link: false, parents: false, exclude: [], keepGitDir: false }],
  ['COPY --exclude repeated', 'COPY --exclude=*.md --exclude=tmp/ . /app', {
    kind: 'COPY', sources: ['.'], dest: '/app', heredocs: [], link: false, parents: false, exclude: ['*.md', 'tmp/'], keepGitDir: false,
  }],
  ['COPY --parents', 'COPY --parents a/b/c /x/', { kind: 'COPY', sources: ['a/b/c'], dest: '/x/', heredocs: [], link: false, parents: true, exclude: [], keepGitDir: false }],
  ['COPY JSON form keeps spaces', 'COPY ["a b.txt", "/d st/"]', { kind: 'COPY', sources: ['a b.txt'], dest: '/d st/', heredocs: [], link: false, parents: false, exclude: [], keepGitDir: false }],
  ['COPY heredoc', 'COPY <<EOF /etc/greeting\nhello $NAME\nEOF', {
    kind: 'COPY', sources: ['<<EOF'], dest: '/etc/greeting', link: false, parents: false, exclude: [], keepGitDir: false,
    heredocs: [{ name: 'EOF', content: 'hello $NAME\n', quoted: false, stripTabs: false }],
  }],
  ['COPY two heredocs into a dir', 'COPY <<A <<B /dir/\na\nA\nb\nB', {
    kind: 'COPY', sources: ['<<A', '<<B'], dest: '/dir/', link: false, parents: false, exclude: [], keepGitDir: false,
    heredocs: [{ name: 'A', content: 'a\n', quoted: false, stripTabs: false }, { name: 'B', content: 'b\n', quoted: false, stripTabs: false }],
  }],
  ['COPY <<- heredoc with tabs', 'COPY <<-EOT /f\n\thello\n\tEOT', {
    kind: 'COPY', sources: ['<<EOT'], dest: '/f', link: false, parents: false, exclude: [], keepGitDir: false,
    heredocs: [{ name: 'EOT', content: 'hello\n', quoted: false, stripTabs: true }],
  }],
  ['ADD with --checksum and --chmod', 'ADD --checksum=sha256:abc --chmod=644 x.tar /', {
    kind: 'ADD', sources: ['x.tar'], dest: '/', heredocs: [], chmod: '644', checksum: 'sha256:abc', link: false, parents: false, exclude: [], keepGitDir: false,
  }],
  ['ADD --keep-git-dir and --unpack', 'ADD --keep-git-dir=true --unpack=false a /', {
    kind: 'ADD', sources: ['a'], dest: '/', heredocs: [], link: false, parents: false, exclude: [], keepGitDir: true, unpack: false,
  }],
  // the rest
  ['MAINTAINER', 'MAINTAINER Jane Doe <jane@example.com>', { kind: 'MAINTAINER', name: 'Jane Doe <jane@example.com>' }],
  ['EXPOSE several', 'EXPOSE 80 443/tcp 53/udp', { kind: 'EXPOSE', ports: ['80', '443/tcp', '53/udp'] }],
  ['VOLUME JSON', 'VOLUME ["/data", "/var/log"]', { kind: 'VOLUME', paths: ['/data', '/var/log'] }],
  ['VOLUME plain', 'VOLUME /a /b', { kind: 'VOLUME', paths: ['/a', '/b'] }],
  ['USER name:group', 'USER app:staff', { kind: 'USER', user: 'app:staff' }],
  ['WORKDIR keeps the whole line', 'WORKDIR /path with space', { kind: 'WORKDIR', path: '/path with space' }],
  ['STOPSIGNAL', 'STOPSIGNAL SIGKILL', { kind: 'STOPSIGNAL', signal: 'SIGKILL' }],
  ['HEALTHCHECK NONE', 'HEALTHCHECK NONE', { kind: 'HEALTHCHECK', none: true }],
  ['HEALTHCHECK with options, shell form', 'HEALTHCHECK --interval=5m --timeout=3s --retries=3 --start-period=1m30s CMD curl -f http://localhost/', {
    kind: 'HEALTHCHECK', none: false, test: { form: 'shell', text: 'curl -f http://localhost/' },
    intervalNs: 300e9, timeoutNs: 3e9, startPeriodNs: 90e9, retries: 3,
  }],
  ['HEALTHCHECK exec form, start-interval', 'HEALTHCHECK --start-interval=500ms CMD ["/bin/check", "x"]', {
    kind: 'HEALTHCHECK', none: false, test: { form: 'exec', args: ['/bin/check', 'x'] }, startIntervalNs: 500e6,
  }],
];

for (const [name, src, expected] of cases) {
  test(`parse: ${name}`, () => {
    const i = src.startsWith('FROM') || src.startsWith('from') ? (P(src)[0] as Instruction) : one(src);
    assert.deepEqual(bare(i), expected);
  });
}

test('parse: ONBUILD records the expression and parses the trigger', () => {
  const i = one('ONBUILD COPY --from=builder --chown=1:1 . /app');
  assert.equal(i.kind, 'ONBUILD');
  if (i.kind !== 'ONBUILD') return;
  assert.equal(i.expression, 'COPY --from=builder --chown=1:1 . /app');
  assert.equal(i.trigger.kind, 'COPY');
  if (i.trigger.kind === 'COPY') {
    assert.equal(i.trigger.from, 'builder');
    assert.equal(i.trigger.chown, '1:1');
  }
});

test('parse: line numbers, end lines and instruction text', () => {
  const all = P('# comment\nFROM busybox\n\nRUN echo a \\\n  b\nCOPY <<EOF /x\nbody\nEOF\nENV A=1');
  assert.deepEqual(all.map((i) => [i.kind, i.line, i.endLine]), [['FROM', 2, 2], ['RUN', 4, 5], ['COPY', 6, 8], ['ENV', 9, 9]]);
  assert.equal(all[1]?.text, 'RUN echo a   b');
  assert.equal(all[2]?.text, 'COPY <<EOF /x');
});

test('parse: directives are recorded; escape=` changes continuation and escapes', () => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1.7\n# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY c:\\src\\x /y');
  assert.deepEqual(df.directives, { syntax: 'docker/dockerfile:1.7', escape: '`' });
  assert.equal(df.escape, '`');
  const run = df.instructions[1];
  assert.equal(run?.kind === 'RUN' && run.cmd.form === 'shell' ? run.cmd.text : '', 'echo a   b');
  const copy = df.instructions[2];
  assert.deepEqual(copy?.kind === 'COPY' ? copy.sources : [], ['c:\\src\\x']);
});

test('parse: CRLF line endings and a BOM', () => {
  const all = P('\uFEFFFROM busybox\r\nRUN echo a \\\r\n  b\r\nENV X=1\r\n');
  assert.equal(all.length, 3);
  const run = all[1];
  assert.equal(run?.kind === 'RUN' && run.cmd.form === 'shell' ? run.cmd.text : '', 'echo a   b');
  assert.deepEqual(all[2]?.kind === 'ENV' ? all[2].pairs : [], [{ key: 'X', value: '1' }]);
});

test('parse: global ARGs may precede the first FROM', () => {
  const all = P('ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG}');
  assert.deepEqual(all.map((i) => i.kind), ['ARG', 'ARG', 'FROM']);
});

test('parse errors name the file and line', () => {
  fails('', /no instructions/, 1);
  fails('# only a comment\n', /no instructions/, 1);
  fails('RUN echo hi', /RUN before the first FROM/, 1);
  fails('ARG A\nENV B=1\nFROM x', /ENV before the first FROM/, 2);
  fails('FROM busybox\nFOO bar', /unknown instruction: FOO/, 2);
  fails('FROM busybox\nCOPY --frm=x a b', /unknown flag: --frm/, 2);
  fails('FROM busybox\nRUN --network=bogus true', /unsupported network mode/, 2);
  fails('FROM busybox\nSHELL /bin/bash -c', /JSON form/, 2);
  fails('FROM busybox\nCOPY onlyone', /at least two arguments/, 2);
  fails('FROM busybox\nENV', /requires at least one argument/, 2);
  fails('FROM busybox\nENV a=1 b', /can't find = in "b"/, 2);
  fails('FROM busybox\nENV onlykey', /must have two arguments/, 2);
  fails('FROM busybox\nHEALTHCHECK --interval=5 CMD true', /invalid duration/, 2);
  fails('FROM busybox\nHEALTHCHECK --retries=x CMD true', /--retries/, 2);
  fails('FROM busybox\nHEALTHCHECK FOO x', /unknown type/, 2);
  fails('FROM busybox\nONBUILD ONBUILD RUN x', /ONBUILD/, 2);
  fails('FROM busybox\nONBUILD FROM x', /isn't allowed as an ONBUILD trigger/, 2);
  fails('FROM busybox a b', /one or three arguments/, 1);
  fails('FROM busybox AS 1bad', /invalid name for build stage/, 1);
  fails('FROM busybox\nCOPY --chmod=9999 a b', /invalid chmod/, 2);
  fails('FROM busybox\nRUN --mount=type=nope,target=/x true', /unsupported mount type/, 2);
  fails('FROM busybox\nRUN --mount=type=tmpfs true', /requires a target/, 2);
  fails('FROM busybox\nCOPY --from=a --from=b x y', /duplicate flag/, 2);
  fails('FROM busybox\nRUN <<EOF\necho never closed', /unterminated heredoc/, 2);
  fails('FROM busybox\nCOPY --link=maybe a b', /boolean/, 2);
  fails('FROM busybox\nVOLUME [""]', /empty string/, 2);
  fails('FROM busybox\nARG 9x=1', /invalid ARG name/, 2);
  fails('FROM busybox\x00\n', /binary/, 1);
});
