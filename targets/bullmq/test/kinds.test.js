'use strict';
// lab's four kinds run in JavaScript as in workers/*.py: what they return, what they throw and
// whether a worker would retry it (a PermanentError is dead-lettered at once).

const test = require('node:test');
const assert = require('node:assert/strict');

const {
  ACTIONS, AgentFailure, InjectedFailure, KINDS, PayloadError, PermanentError, SyntheticFailure,
  isPermanent,
} = require('../lib/kinds');

function job(kind, payload, attempt = 1, seq = 3) {
  return { jobId: `r-1-${seq}`, runId: 'r-1', seq, kind, attempt, createdAt: 0, payload };
}

const instant = async () => {}; // a sleep that does not wait: the agent's story without its 10 s

test('sleep waits its seconds and says when it started and ended', async () => {
  const out = await KINDS.sleep.run(job('sleep', { seconds: 0.02 }));
  assert.ok(out.endedMs - out.startedMs >= 15, JSON.stringify(out));
  await assert.rejects(KINDS.sleep.run(job('sleep', { seconds: 61 })), PayloadError);
});

test('index fails the attempts it is told to, then writes its data', async () => {
  const payload = { failAttempts: 2, data: { a: [1, 2] } };
  await assert.rejects(KINDS.index.run(job('index', payload, 2)), (error) => {
    assert.ok(error instanceof InjectedFailure && !isPermanent(error));
    assert.match(error.message, /attempt 2 of 2/);
    return true;
  });
  assert.deepEqual(await KINDS.index.run(job('index', payload, 3)), { data: { a: [1, 2] } });
  assert.deepEqual(await KINDS.index.run(job('index', {})), {});
  assert.ok(KINDS.index.batchable && !KINDS.synthetic.batchable);
});

test('synthetic runs its drawn service time and writes its draws', async () => {
  const payload = {
    serviceMs: { dist: 'fixed', value: 5 }, docBytes: { dist: 'fixed', value: 10 },
  };
  const out = await KINDS.synthetic.run(job('synthetic', payload));
  assert.equal(out.serviceMs, 5);
  assert.ok(out.tookMs >= 4.5, JSON.stringify(out));
  assert.equal(out.pad, 'x'.repeat(10));
  const cpu = job('synthetic', { ...payload, cpuShare: 1 });
  const busy = await KINDS.synthetic.run(cpu, { sleep: instant });
  assert.ok(busy.tookMs >= 4.5, 'a cpuShare of 1 spends the whole service time on the CPU');
});

test('synthetic fails for good on the first attempt only, and retryably by failRate', async () => {
  const permanent = { serviceMs: { dist: 'fixed', value: 0 }, permanentFailRate: 1 };
  await assert.rejects(KINDS.synthetic.run(job('synthetic', permanent, 1)), (error) => {
    assert.ok(error instanceof PermanentError && isPermanent(error));
    return true;
  });
  await KINDS.synthetic.run(job('synthetic', permanent, 2)); // a later attempt is not gated
  const failing = { serviceMs: { dist: 'fixed', value: 0 }, failRate: 1 };
  await assert.rejects(KINDS.synthetic.run(job('synthetic', failing, 4)), (error) => {
    assert.ok(error instanceof SyntheticFailure && !isPermanent(error));
    assert.match(error.message, /attempt 4 fails/);
    return true;
  });
  // A single job (no seq) draws by its id.
  const single = { ...job('synthetic', { failRate: 0.5, seed: 1 }), seq: null, jobId: 'job-1' };
  const byId = KINDS.synthetic.draw({ failRate: 0.5, seed: 1 }, 'job-1', 1);
  await (byId.fails ? assert.rejects(KINDS.synthetic.run(single)) : KINDS.synthetic.run(single));
});

test('a payload synthetic cannot run is permanent and names its field', async () => {
  for (const [payload, field] of [
    [{ serviceMs: { dist: 'pareto', min: 20, alpha: 0.01 } }, 'serviceMs.alpha'],
    // A JSON number past 2^53 has lost its digits: refused, never drawn from rounded.
    [{ seed: 2 ** 60 }, 'seed'],
    [{ cpuShare: 2 }, 'cpuShare'],
  ]) {
    await assert.rejects(KINDS.synthetic.run(job('synthetic', payload)), (error) => {
      assert.ok(error instanceof PayloadError && isPermanent(error), String(error));
      assert.equal(error.field, field);
      return true;
    });
  }
  const exact = KINDS.synthetic.draw({ seed: '9223372036854775807', failRate: 0.5 }, 1, 1);
  assert.deepEqual(exact, KINDS.synthetic.draw({ seed: 2n ** 63n - 1n, failRate: 0.5 }, 1, 1));
});

test('agent takes 10 s in ten named steps by default, each through the callback', async () => {
  const steps = [];
  const out = await KINDS.agent.run(job('agent', {}), {
    sleep: instant,
    progress: (percent, label, line) => steps.push([percent, label, line]),
  });
  assert.equal(out.steps, 10);
  assert.deepEqual(steps.map((s) => s[0]), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  assert.equal(steps[0][1], 'Navigating to page');
  assert.equal(steps[0][2], 'step 1/10: Navigating to page: opened https://example.com/');
  const labels = new Set(ACTIONS.map((a) => a[0]));
  assert.ok(steps.every((s) => labels.has(s[1])));
  assert.deepEqual(out.actions, steps.map((s) => s[1]));
});

test('agent waits its interval between steps and fails where it is told', async () => {
  const fast = { durationSeconds: 0.04, stepIntervalSeconds: 0.01 };
  const started = Date.now();
  const out = await KINDS.agent.run(job('agent', fast));
  assert.equal(out.steps, 4);
  assert.ok(Date.now() - started >= 35);
  const failing = { ...fast, failAtStep: 2, failAttempts: 1 };
  await assert.rejects(KINDS.agent.run(job('agent', failing, 1)), (error) => {
    assert.ok(error instanceof AgentFailure && !isPermanent(error));
    assert.match(error.message, /step 2/);
    return true;
  });
  assert.equal((await KINDS.agent.run(job('agent', failing, 2))).steps, 4);
  // The callback can stop the job (a cancel): what it throws ends the run.
  const stop = () => {
    throw new Error('cancel requested');
  };
  const cancelled = KINDS.agent.run(job('agent', fast), { progress: stop });
  await assert.rejects(cancelled, /cancel requested/);
});
