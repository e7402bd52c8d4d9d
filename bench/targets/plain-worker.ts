// The ceiling for sending: a plain BullMQ worker whose processor only POSTs each job to custom/send with undici.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';

const [redisUrl, simUrl, appId, secret, concurrency] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const dispatcher = new Agent({ connections: 256 });
const tokenAnswer = await request(`${simUrl}/cgi-bin/stable_token`, {
  method: 'POST',
  body: JSON.stringify({ grant_type: 'client_credential', appid: appId, secret }),
});
const { access_token } = (await tokenAnswer.body.json()) as { access_token: string };
const worker = new Worker(
  'plain',
  async (job) => {
    const res = await request(`${simUrl}/cgi-bin/message/custom/send?access_token=${access_token}`, {
      method: 'POST',
      body: JSON.stringify(job.data),
      dispatcher,
    });
    await res.body.json();
  },
  {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    concurrency: Number(concurrency),
    prefix: 'bench',
  },
);
worker.on('error', () => {});
await worker.waitUntilReady();
console.log('ready');
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
