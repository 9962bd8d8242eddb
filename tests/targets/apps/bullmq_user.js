'use strict';
// A user's own BullMQ worker, measured by lab's shim in the two lines the guide gives
// (docs/guides/your-pipeline.md, "bullmq"). Its processor writes what it was given to the hash
// `key` and throws for the seq `kwargs.fail` names; it leaves once N jobs have ended.
//
//   node bullmq_user.js QUEUE KEY N      (with lab's LAB_* settings in its environment)

const IORedis = require('ioredis');
const { Worker } = require('bullmq');
const { measured, shim } = require('lab-bullmq/lib/shim');

const [queue, key, n] = process.argv.slice(2);
const redis = new IORedis(process.env.LAB_REDIS_URL);

async function record(job) {
  const [seq, jobId] = job.data.args;
  if (job.data.kwargs.fail === seq) throw new Error(`seq ${seq} fails, as asked`);
  const seen = { jobId, name: job.name, seqType: typeof seq, createdAt: job.data.lab.createdAt, bullId: job.id };
  await redis.hset(key, String(seq), JSON.stringify(seen));
}

const connection = new IORedis(process.env.LAB_REDIS_URL, { maxRetriesPerRequest: null });
const worker = new Worker(queue, measured(record), { connection, concurrency: 4 });
let ended = 0;
const leave = async () => {
  ended += 1;
  if (ended < Number(n)) return;
  await worker.close();
  await shim().close();
  await Promise.all([redis.quit(), connection.quit()]);
  process.exit(0);
};
worker.on('completed', leave);
worker.on('failed', leave);
worker.on('error', (error) => console.error(error.message));
