import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DockerfileError } from '../src/dockerfile/errors.js';
import type { Instruction } from '../src/dockerfile/instructions.js';
import { expandWord, expandWords } from '../src/dockerfile/lexer.js';
import { parseDockerfile } from '../src/dockerfile/parse.js';
import { planBuild, renderPlan, unusedBuildArgs } from '../src/dockerfile/plan.js';
import { Scope, expandInstruction } from '../src/dockerfile/scope.js';
import { platformArgs } from '../src/oci/platform.js';
import { applyMetadata } from '../src/builder/metadata.js';
import { emptyConfig } from '../src/oci/config.js';
import type { ImageConfig } from '../src/oci/types.js';

const env: Record<string, string> = { SET: 'value', EMPTY: '', SP: 'a b', PATHY: '/usr/local/bin:/usr/bin', FILE: 'archive.tar.gz' };
const lookup = (n: string): string | undefined => env[n];
const X = (w: string): string => expandWord(w, lookup);

const wordCases: [string, string][] = [
  ['$SET', 'value'],
  ['${SET}', 'value'],
  ['pre${SET}post', 'prevaluepost'],
  ['$SET/x', 'value/x'],
  ['$UNSET', ''],
  ['${UNSET:-default}', 'default'],
  ['${EMPTY:-default}', 'default'],
  ['${SET:-default}', 'value'],
  ['${UNSET-default}', 'default'],
  ['${EMPTY-default}', ''],
  ['${SET:+alt}', 'alt'],
  ['${EMPTY:+alt}', ''],
  ['${UNSET:+alt}', ''],
  ['${EMPTY+alt}', 'alt'],
  ['${UNSET+alt}', ''],
  ['${UNSET:-$SET}', 'value'],
  ['${UNSET:-${SET:+nested}}', 'nested'],
  ['\\$SET', '$SET'],
  ["'$SET'", '$SET'],
  ['"$SET"', 'value'],
  ['"a\\"b"', 'a"b'],
  ['"\\$SET"', '$SET'],
  ['"x\\ny"', 'x\\ny'],
  ['a\\ b', 'a b'],
  ['$', '$'],
  ['cost$', 'cost$'],
  ['$1x', 'x'],
  ['${FILE%.gz}', 'archive.tar'],
  ['${FILE%%.*}', 'archive'],
  ['${FILE#*.}', 'tar.gz'],
  ['${FILE##*.}', 'gz'],
  ['${PATHY/usr/opt}', '/opt/local/bin:/usr/bin'],
  ['${PATHY//usr/opt}', '/opt/local/bin:/opt/bin'],
  ['$(not-expanded)', '$(not-expanded)'],
];
for (const [input, want] of wordCases) {
  test(`expand: ${input} -> ${JSON.stringify(want)}`, () => assert.equal(X(input), want));
}

test('expand: errors for bad substitutions', () => {
  assert.throws(() => X('${SET'), /missing/);
  assert.throws(() => X('"open'), /double-quote/);
  assert.throws(() => X("'open"), /single-quote/);
  assert.throws(() => X('${UNSET:?must be set}'), /must be set/);
  assert.throws(() => X('${SET:^x}'), /unsupported modifier/);
});

test('expand: words split on unquoted whitespace only', () => {
  assert.deepEqual(expandWords('a "b c" $SP', lookup), ['a', 'b c', 'a', 'b']);
  assert.deepEqual(expandWords('"$SP"', lookup), ['a b']);
});

test('expand: the escape directive changes the escape character', () => {
  assert.equal(expandWord('c:\\dir`$SET', lookup, '`'), 'c:\\dir$SET');
});

/** Build the config of the target stage from metadata-only instructions, the way the builder does. */
function metadataBuild(src: string, buildArgs: Record<string, string> = {}, target?: string): { config: ImageConfig; plan: ReturnType<typeof planBuild>; scope: Scope } {
  const plan = planBuild(parseDockerfile(src), { buildArgs: new Map(Object.entries(buildArgs)), ...(target ? { target } : {}) });
  const configs = new Map<number, { config: ImageConfig; scope: Scope }>();
  for (const i of plan.order) {
    const stage = plan.stages[i];
    if (!stage) throw new Error('no stage');
    const base = stage.base.kind === 'stage' ? configs.get(stage.base.index) : undefined;
    let config = base ? base.config : emptyConfig({ os: 'linux', arch: 'amd64' });
    const scope = plan.globals.child();
    scope.loadEnv(config.config.Env);
    const state = { cmdSetInStage: false };
    for (const ins of stage.instructions) {
      if (ins.kind === 'RUN' || ins.kind === 'COPY' || ins.kind === 'ADD') continue;
      config = applyMetadata(config, ins, scope, state, plan.file);
    }
    configs.set(i, { config, scope });
  }
  const t = configs.get(plan.target);
  if (!t) throw new Error('target not built');
  return { ...t, plan };
}

test('scope: ENV expands against the env before the instruction', () => {
  const { config } = metadataBuild('FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc');
  assert.deepEqual(config.config.Env, ['abc=bye', 'def=hello', 'ghi=bye']);
});

test('scope: ENV quotes and escapes are removed by expansion', () => {
  const { config } = metadataBuild('FROM scratch\nENV a="x y" b=\'$lit\' c=one\\ two\nENV legacy "q v"');
  assert.deepEqual(config.config.Env, ['a=x y', 'b=$lit', 'c=one two', 'legacy=q v']);
});

test('scope: global ARGs are visible to FROM only unless re-declared', () => {
  const { plan, config } = metadataBuild('ARG V=1\nARG IMG=busybox\nFROM $IMG AS a\nENV SEEN=${V:-unset}\nFROM a\nARG V\nENV AGAIN=$V');
  assert.deepEqual(plan.stages.map((s) => s.base), [{ kind: 'image', ref: 'busybox' }, { kind: 'stage', index: 0 }]);
  assert.deepEqual(config.config.Env, ['SEEN=unset', 'AGAIN=1']);
});

test('scope: --build-arg overrides defaults, global and per-stage', () => {
  const { plan, config } = metadataBuild('ARG TAG=1\nFROM busybox:$TAG\nARG X=default\nENV X_IS=$X', { TAG: '2', X: 'given' });
  assert.deepEqual(plan.stages[0]?.base, { kind: 'image', ref: 'busybox:2' });
  assert.deepEqual(config.config.Env, ['X_IS=given']);
});

test('scope: a stage ARG default overrides one global and inherits another', () => {
  const { config } = metadataBuild('ARG A=ga\nARG B=gb\nFROM scratch\nARG A=sa\nARG B\nENV R=$A-$B');
  assert.deepEqual(config.config.Env, ['R=sa-gb']);
});

test('scope: ENV takes precedence over ARG of the same name', () => {
  const { config, scope } = metadataBuild('FROM scratch\nARG V=fromarg\nENV V=fromenv\nENV W=$V', { V: 'cli' });
  assert.deepEqual(config.config.Env, ['V=fromenv', 'W=fromenv']);
  assert.deepEqual(scope.runArgs(), [], 'an ARG shadowed by ENV is not passed to RUN');
});

test('scope: ARG values flow into RUN env, sorted; undeclared build-args do not', () => {
  const { scope } = metadataBuild('FROM scratch\nARG B=2\nARG A\nARG C', { A: '1', UNUSED: 'x' });
  assert.deepEqual(scope.runArgs(), [['A', '1'], ['B', '2']]);
  assert.equal(scope.consumed.has('UNUSED'), false);
  assert.equal(scope.consumed.has('A'), true);
});

test('scope: ARG default may use earlier ARGs and ENV', () => {
  const { config } = metadataBuild('FROM scratch\nENV BASE=/opt\nARG DIR=$BASE/app\nARG SUB=${DIR}/bin\nENV P=$SUB');
  assert.deepEqual(config.config.Env, ['BASE=/opt', 'P=/opt/app/bin']);
});

test('scope: platform ARGs are predefined in the global scope and re-declarable', () => {
  const arch = platformArgs().TARGETARCH as string;
  const { plan, config } = metadataBuild('FROM busybox-$TARGETARCH\nARG TARGETARCH\nARG BUILDPLATFORM\nENV A=$TARGETARCH P=$BUILDPLATFORM');
  assert.deepEqual(plan.stages[0]?.base, { kind: 'image', ref: `busybox-${arch}` });
  assert.deepEqual(config.config.Env, [`A=${arch}`, `P=linux/${arch}`]);
});

test('scope: proxy build-args reach RUN without an ARG line', () => {
  const { scope } = metadataBuild('FROM scratch', { http_proxy: 'http://127.0.0.1:3128' });
  assert.deepEqual(scope.proxyEnv(), [['http_proxy', 'http://127.0.0.1:3128']]);
  assert.deepEqual(scope.runArgs(), []);
});

test('expand instruction: COPY, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL expand; RUN/CMD do not', () => {
  const scope = new Scope('Dockerfile', '\\', new Map());
  scope.env.set('D', '/dst');
  scope.env.set('U', 'app');
  scope.env.set('P', '80 443');
  scope.env.set('S', 'SIGTERM');
  const df = parseDockerfile('FROM scratch\nCOPY --chown=$U:$U --from=${U}b src-$U $D/\nWORKDIR $D/w\nUSER ${U}:${U}\nLABEL k=$U "q"="$D"\nEXPOSE $P\nVOLUME $D/v\nSTOPSIGNAL $S\nRUN echo $D\nCMD echo $D');
  const got = df.instructions.slice(1).map((i: Instruction) => expandInstruction(i, scope));
  const [copy, wd, user, label, expose, vol, sig, run, cmd] = got;
  assert.deepEqual(copy?.kind === 'COPY' ? [copy.sources, copy.dest, copy.chown, copy.from] : [], [['src-app'], '/dst/', 'app:app', 'appb']);
  assert.equal(wd?.kind === 'WORKDIR' ? wd.path : '', '/dst/w');
  assert.equal(user?.kind === 'USER' ? user.user : '', 'app:app');
  assert.deepEqual(label?.kind === 'LABEL' ? label.pairs : [], [{ key: 'k', value: 'app' }, { key: 'q', value: '/dst' }]);
  assert.deepEqual(expose?.kind === 'EXPOSE' ? expose.ports : [], ['80', '443']);
  assert.deepEqual(vol?.kind === 'VOLUME' ? vol.paths : [], ['/dst/v']);
  assert.equal(sig?.kind === 'STOPSIGNAL' ? sig.signal : '', 'SIGTERM');
  assert.deepEqual(run?.kind === 'RUN' ? run.cmd : {}, { form: 'shell', text: 'echo $D' });
  assert.deepEqual(cmd?.kind === 'CMD' ? cmd.cmd : {}, { form: 'shell', text: 'echo $D' });
});

test('expand instruction: COPY heredoc bodies expand unless the delimiter is quoted', () => {
  const scope = new Scope('Dockerfile', '\\', new Map());
  scope.env.set('NAME', 'world');
  const df = parseDockerfile('FROM scratch\nCOPY <<EOF /a\nhello $NAME "q"\nEOF\nCOPY <<"EOF" /b\nhello $NAME\nEOF');
  const [a, b] = df.instructions.slice(1).map((i) => expandInstruction(i, scope));
  assert.equal(a?.kind === 'COPY' ? a.heredocs[0]?.content : '', 'hello world "q"\n');
  assert.equal(b?.kind === 'COPY' ? b.heredocs[0]?.content : '', 'hello $NAME\n');
});

test('config: CMD/ENTRYPOINT forms, SHELL, and ENTRYPOINT resetting an inherited CMD', () => {
  const a = metadataBuild('FROM scratch AS base\nCMD ["base-cmd"]\nFROM base\nENTRYPOINT ["/ep"]').config.config;
  assert.deepEqual([a.Entrypoint, a.Cmd], [['/ep'], null]);
  const b = metadataBuild('FROM scratch\nCMD ["c"]\nENTRYPOINT ["/ep"]').config.config;
  assert.deepEqual([b.Entrypoint, b.Cmd], [['/ep'], ['c']]);
  const c = metadataBuild('FROM scratch\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\nENTRYPOINT run it').config.config;
  assert.deepEqual(c.Cmd, ['/bin/bash', '-c', 'echo hi']);
  assert.deepEqual(c.Entrypoint, ['/bin/bash', '-c', 'run it']);
  assert.deepEqual(c.Shell, ['/bin/bash', '-c']);
});

test('config: WORKDIR relative paths chain; EXPOSE normalizes; labels merge', () => {
  const c = metadataBuild('FROM scratch\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c/./d\nEXPOSE 80 8000-8001/UDP\nLABEL a=1\nLABEL b=2 a=3').config.config;
  assert.equal(c.WorkingDir, '/a/c/d');
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '8000/udp': {}, '8001/udp': {} });
  assert.deepEqual(c.Labels, { a: '3', b: '2' });
});

test('config: HEALTHCHECK, STOPSIGNAL, VOLUME, ONBUILD, MAINTAINER', () => {
  const r = metadataBuild('FROM scratch\nHEALTHCHECK --interval=30s --retries=2 CMD ["/check"]\nSTOPSIGNAL SIGINT\nVOLUME /data\nONBUILD RUN echo $X\nMAINTAINER me').config;
  assert.deepEqual(r.config.Healthcheck, { Test: ['CMD', '/check'], Interval: 30e9, Retries: 2 });
  assert.equal(r.config.StopSignal, 'SIGINT');
  assert.deepEqual(r.config.Volumes, { '/data': {} });
  assert.deepEqual(r.config.OnBuild, ['RUN echo $X']);
  assert.equal(r.author, 'me');
  const none = metadataBuild('FROM scratch\nHEALTHCHECK NONE').config.config;
  assert.deepEqual(none.Healthcheck, { Test: ['NONE'] });
  const shell = metadataBuild('FROM scratch\nHEALTHCHECK CMD curl -f x').config.config;
  assert.deepEqual(shell.Healthcheck, { Test: ['CMD-SHELL', 'curl -f x'] });
});

test('plan: --target picks a stage; stages it does not need are not built', () => {
  const src = 'FROM busybox AS deps\nRUN a\nFROM busybox AS unused\nRUN b\nFROM deps AS build\nCOPY --from=0 /x /y\nFROM busybox AS final\nCOPY --from=build /y /z';
  const all = planBuild(parseDockerfile(src));
  assert.equal(all.target, 3);
  assert.deepEqual(all.order, [0, 2, 3], 'unused stage skipped');
  const t = planBuild(parseDockerfile(src), { target: 'build' });
  assert.equal(t.target, 2);
  assert.deepEqual(t.order, [0, 2]);
  const u = planBuild(parseDockerfile(src), { target: 'UNUSED' });
  assert.deepEqual(u.order, [1]);
});

test('plan: stage references by name and index; FROM of a later name is an image', () => {
  const p = planBuild(parseDockerfile('FROM later AS first\nFROM busybox AS later\nCOPY --from=first /a /b\nFROM scratch\nCOPY --from=1 /b /c'));
  assert.deepEqual(p.stages.map((s) => s.base), [{ kind: 'image', ref: 'later' }, { kind: 'image', ref: 'busybox' }, { kind: 'scratch' }]);
  assert.deepEqual(p.stages.map((s) => s.deps), [[], [0], [1]]);
  assert.deepEqual(p.order, [0, 1, 2]);
});

test('plan: COPY --from an image that is not a stage is kept as an image', () => {
  const p = planBuild(parseDockerfile('FROM scratch\nCOPY --from=busybox:1 /bin/busybox /bb'));
  assert.deepEqual(p.stages[0]?.deps, []);
});

test('plan: RUN --mount from= is a dependency', () => {
  const p = planBuild(parseDockerfile('FROM busybox AS tools\nFROM busybox\nRUN --mount=type=bind,from=tools,target=/t ls /t'));
  assert.deepEqual(p.order, [0, 1]);
});

test('plan errors: unknown target, self copy, forward index, duplicate stage, blank base', () => {
  const err = (src: string, re: RegExp, opts = {}): void => {
    assert.throws(() => planBuild(parseDockerfile(src), opts), (e: unknown) => e instanceof DockerfileError && re.test(e.message));
  };
  err('FROM busybox AS a', /target stage "nope" could not be found/, { target: 'nope' });
  err('FROM busybox AS a\nCOPY --from=a /x /y', /circular dependency/);
  err('FROM busybox\nCOPY --from=1 /x /y\nFROM busybox', /earlier stage/);
  err('FROM busybox AS a\nFROM busybox AS a', /duplicate stage name/);
  err('ARG B\nFROM $B', /should not be blank/);
});

test('plan: circular COPY --from between stages is an error', () => {
  assert.throws(
    () => planBuild(parseDockerfile('FROM busybox AS a\nCOPY --from=b /x /y\nFROM busybox AS b\nCOPY --from=a /y /z')),
    /circular dependency/,
  );
});

test('plan: the printed plan is stable and readable', () => {
  const src = 'ARG V=1\nFROM busybox AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /out\nCMD ["/out"]';
  const a = renderPlan(planBuild(parseDockerfile(src)));
  const b = renderPlan(planBuild(parseDockerfile(src)));
  assert.equal(a, b);
  assert.equal(
    a,
    [
      '# Dockerfile: 2 stage(s), target stage-1, build order build -> stage-1',
      'global ARG V=1',
      'stage 0 build: FROM image busybox',
      '     3  RUN make',
      'stage 1 stage-1: FROM scratch deps=[0]',
      '     5  COPY --from=build /out /out',
      '     6  CMD ["/out"]',
      '',
    ].join('\n'),
  );
});

test('plan: build-args that no built stage declares are reported as unused', () => {
  const src = 'ARG G\nFROM busybox AS a\nARG USED\nFROM busybox AS b\nARG ONLY_IN_B\nFROM busybox\nCOPY --from=a /x /y';
  const p = planBuild(parseDockerfile(src), { buildArgs: new Map([['G', '1'], ['USED', '2'], ['ONLY_IN_B', '3'], ['NOPE', '4'], ['HTTP_PROXY', 'x']]) });
  assert.deepEqual(unusedBuildArgs(p), ['NOPE', 'ONLY_IN_B']);
});
