import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyMetadataStep, beforeLayerStep, makesLayer, startStage } from '../src/builder/stage.js';
import { parseDockerfile } from '../src/dockerfile/parse.js';
import { planBuild } from '../src/dockerfile/plan.js';
import { emptyConfig } from '../src/oci/config.js';

// the pure part of a stage: no root, no store, no filesystem

function evalStage(text: string, base = emptyConfig({ os: 'linux', arch: 'amd64' })) {
  const plan = planBuild(parseDockerfile(text, 'Dockerfile'), { buildArgs: new Map() });
  const stage = plan.stages[plan.target];
  assert.ok(stage);
  const s = startStage(plan, stage, base);
  const layers: string[] = [];
  for (const i of s.instructions) {
    if (makesLayer(s, i)) {
      beforeLayerStep(s, i, 'Dockerfile');
      layers.push(i.text);
    } else applyMetadataStep(s, i, 'Dockerfile', '2000-01-01T00:00:00Z');
  }
  return { s, layers };
}

test('stage evaluation: metadata edits the config with empty_layer history; layer steps are told apart', () => {
  const { s, layers } = evalStage('FROM scratch\nARG V=1\nENV A=$V B=two\nWORKDIR /\nWORKDIR /app\nLABEL x=y\nRUN true\nUSER 1000\nCMD ["sh"]\n');
  assert.deepEqual(layers, ['WORKDIR /app', 'RUN true']);
  assert.deepEqual(s.config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1', 'B=two']);
  assert.equal(s.config.config.WorkingDir, '/app');
  assert.equal(s.config.config.User, '1000');
  assert.deepEqual(s.config.config.Labels, { x: 'y' });
  assert.deepEqual(s.config.config.Cmd, ['sh']);
  const hist = (s.config.history ?? []).map((h) => [h.created_by, h.empty_layer === true]);
  assert.deepEqual(hist.map((h) => h[1]), [true, true, true, true, true, true]);
  assert.deepEqual(hist.map((h) => String(h[0]).split(' ')[0]), ['ARG', 'ENV', 'WORKDIR', 'LABEL', 'USER', 'CMD']);
});

test('stage evaluation: the base image\'s ONBUILD triggers run first and are cleared from the config', () => {
  const base = emptyConfig({ os: 'linux', arch: 'amd64' });
  base.config.OnBuild = ['RUN echo from-trigger', 'ENV T=1'];
  const { s, layers } = evalStage('FROM scratch\nRUN echo own\n', base);
  assert.deepEqual(layers, ['RUN echo from-trigger', 'RUN echo own']);
  assert.equal(s.config.config.OnBuild ?? null, null);
  assert.ok((s.config.config.Env ?? []).includes('T=1'));
});
