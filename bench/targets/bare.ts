// (a) The ceiling: a bare Fastify route that reads the body and answers `success`.
import Fastify from 'fastify';

const app = Fastify();
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/wechat/:appId', async () => 'success');
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) });
console.log('listening');
