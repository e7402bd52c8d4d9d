// (c) The reference: a minimal hand-written safe-mode JSON handler — verify msg_signature, decrypt, check
// the AppID, queue.add with the MsgId as job id, answer `success`. No logging, metrics, limits or error answers.
import { createDecipheriv, createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const [port, token, appId, aesKey, redisUrl] = process.argv.slice(2) as [string, string, string, string, string];
const key = Buffer.from(`${aesKey}=`, 'base64');
const queue = new Queue('minimal', { connection: new Redis(redisUrl, { enableOfflineQueue: false }), prefix: 'bench' });
queue.on('error', () => {});

const app = Fastify();
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/wechat/:appId', async (req, reply) => {
  const q = req.query as Record<string, string>;
  const { Encrypt } = JSON.parse(req.body as string) as { Encrypt: string };
  const expected = createHash('sha1').update([token, q.timestamp, q.nonce, Encrypt].sort().join('')).digest('hex');
  if (expected !== q.msg_signature) return reply.code(401).send('bad signature');
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Encrypt, 'base64'), decipher.final()]);
  const body = plain.subarray(16, plain.length - (plain[plain.length - 1] ?? 0));
  const length = body.readUInt32BE(0);
  if (body.subarray(4 + length).toString() !== appId) return reply.code(401).send('wrong appid');
  const message = JSON.parse(body.subarray(4, 4 + length).toString()) as { MsgId: number | string };
  await queue.add('push', message, { jobId: `${appId}-${message.MsgId}` });
  return 'success';
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
console.log('listening');
