'use strict';
// One side of scripts/bullmq_shim_cost.py: a BullMQ worker on QUEUE whose processor does
// nothing (or waits WORK_MS), plain or measured by lab's shim (durable: each end counted before BullMQ records it;
// batched: in the next batch). It starts once GO (a Redis list) says so, runs SECONDS, finishes
// what it holds, counts what is left, and prints {rate, cpuMs} (jobs a second, CPU ms a job).
//
//   node scripts/bullmq_shim_cost.js plain|durable|batched QUEUE GO SECONDS CONCURRENCY WORK_MS

const path = require('node:path');
const { createRequire } = require('node:module');

const HOME = path.resolve(__dirname, '..', 'targets', 'bullmq');
const need = createRequire(path.join(HOME, 'package.json'));
const IORedis = need('ioredis');
const { Worker } = need('bullmq');
const { measured, shim } = require(path.join(HOME, 'lib', 'shim'));

async function main() {
  const [side, queue, go, seconds, concurrency, workMs] = process.argv.slice(2);
  const url = process.env.LAB_REDIS_URL;
  const wait = Number(workMs);
  const processor = wait > 0 ? () => new Promise((resolve) => setTimeout(resolve, wait)) : async () => null;
  const run = side === 'plain' ? processor : measured(processor, { durable: side === 'durable' });
  if (side !== 'plain') shim().start();
  const control = new IORedis(url);
  await control.blpop(go, 60);
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  let done = 0;
  const began = performance.now();
  const cpu = process.cpuUsage();
  const worker = new Worker(queue, run, { connection, concurrency: Number(concurrency) });
  worker.on('completed', () => { done += 1; });
  await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
  await worker.close();
  if (side !== 'plain') await shim().close(); // what is still batched is counted in the figure
  const took = (performance.now() - began) / 1000;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ rate: done / took, cpuMs: (used.user + used.system) / 1000 / Math.max(1, done), done }));
  await Promise.all([control.quit(), connection.quit()]);
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
