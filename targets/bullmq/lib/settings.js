'use strict';
/**
 * The `LAB_*` settings a Node worker of lab needs, read from the environment with lab's own
 * defaults (lab/config.py; test/record-vectors.json holds Python's defaults and a test holds
 * these to them). A user's worker sets at least LAB_REDIS_URL, LAB_PREFIX and LAB_QUEUE as its
 * lab does; `lab worker --target bullmq` passes every setting.
 */

const path = require('node:path');

const DEFAULTS = {
  LAB_REDIS_URL: 'redis://127.0.0.1:6379/0',
  LAB_ES_URL: 'http://127.0.0.1:9200',
  LAB_PREFIX: 'lab',
  LAB_QUEUE: 'lab.jobs',
  LAB_ES_INDEX: 'lab-jobs',
  LAB_ES_REPLICAS: 0,
  LAB_CONCURRENCY: 5,
  LAB_MAX_ATTEMPTS: 3,
  LAB_RETRY_LADDER_MS: '1000,5000,30000,120000,600000',
  LAB_BULLMQ_LOCK_MS: 10000,
  LAB_HEARTBEAT_S: 2.0,
  LAB_HEARTBEAT_TTL_S: 10.0,
  LAB_REDIS_TIMEOUT_S: 5.0,
  LAB_ES_TIMEOUT_S: 10.0,
  LAB_EVENT_STREAM_LEN: 10000,
  LAB_HISTORY_S: 3600,
};

// Where lab's Lua scripts are when this folder sits in lab's source tree (lab's own worker).
const LUA_DIR = path.resolve(__dirname, '..', '..', '..', 'lab', 'runtime', 'lua');

class SettingError extends Error {}

function number(env, name) {
  const raw = env[name];
  if (raw === undefined || raw === '') return DEFAULTS[name];
  const value = Number(raw);
  if (!/^[0-9.eE+-]+$/.test(raw) || !Number.isFinite(value) || value < 0) {
    throw new SettingError(`${name}=${JSON.stringify(raw)} is not a number lab can use`);
  }
  return value;
}

function text(env, name) {
  const raw = env[name];
  return raw === undefined || raw === '' ? DEFAULTS[name] : raw;
}

/** The ladder as lab reads it: ascending delays in ms (its last step repeats). */
function ladder(raw) {
  const steps = raw.split(',').filter((part) => part.trim()).map(Number);
  if (!steps.length || steps.some((s) => !Number.isInteger(s) || s <= 0)) {
    throw new SettingError(`LAB_RETRY_LADDER_MS=${JSON.stringify(raw)} is not a list of ms`);
  }
  return steps;
}

/** The settings from `env` (process.env by default); `SettingError` names a bad one. */
function load(env = process.env) {
  return {
    redisUrl: text(env, 'LAB_REDIS_URL'),
    esUrls: text(env, 'LAB_ES_URL').split(',').map((u) => u.trim()).filter(Boolean),
    prefix: text(env, 'LAB_PREFIX'),
    queue: text(env, 'LAB_QUEUE'),
    esIndex: text(env, 'LAB_ES_INDEX'),
    esReplicas: number(env, 'LAB_ES_REPLICAS'),
    concurrency: number(env, 'LAB_CONCURRENCY'),
    maxAttempts: number(env, 'LAB_MAX_ATTEMPTS'),
    retryLadderMs: ladder(text(env, 'LAB_RETRY_LADDER_MS')),
    bullmqLockMs: number(env, 'LAB_BULLMQ_LOCK_MS'),
    heartbeatS: number(env, 'LAB_HEARTBEAT_S'),
    heartbeatTtlS: number(env, 'LAB_HEARTBEAT_TTL_S'),
    redisTimeoutS: number(env, 'LAB_REDIS_TIMEOUT_S'),
    esTimeoutS: number(env, 'LAB_ES_TIMEOUT_S'),
    eventStreamLen: number(env, 'LAB_EVENT_STREAM_LEN'),
    historyS: number(env, 'LAB_HISTORY_S'),
    luaDir: env.LAB_LUA_DIR || LUA_DIR,
  };
}

/** The BullMQ queue lab submits to: `<LAB_QUEUE>.bullmq` (lab/targets/bullmq.py). */
function queueName(settings) {
  return `${settings.queue}.bullmq`;
}

module.exports = { DEFAULTS, LUA_DIR, SettingError, load, queueName };
