// What a Directus deployment does with Redis, through ioredis, against Libellule.
// Run by tests/node_ioredis.rs, which starts the server and sets LIBELLULE_PORT.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');

const port = Number(process.env.LIBELLULE_PORT);
if (!port) throw new Error('LIBELLULE_PORT is not set');

function client(opts = {}) {
  return new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1, ...opts });
}

// The rate limiter script of rate-limiter-flexible (Directus's RATE_LIMITER_STORE=redis).
const RATE_LIMIT = `
redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX')
local consumed = redis.call('incrby', KEYS[1], ARGV[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}
`;

// A lock in the style Directus's synchronization uses: select the lock database first.
const LOCK_ACQUIRE = `
redis.pcall('SELECT', ARGV[3])
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`;
const LOCK_EXTEND = `
redis.pcall('SELECT', ARGV[3])
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
`;
const LOCK_RELEASE = `
redis.pcall('SELECT', ARGV[2])
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
`;

test('server looks like Redis to ioredis (INFO, loading:0, redis_version)', async () => {
  const r = client();
  const info = await r.info();
  assert.match(info, /redis_version:/);
  assert.match(info, /loading:0/);
  assert.equal(await r.ping(), 'PONG');
  r.disconnect();
});

test('defineCommand scripts: EVALSHA with EVAL fallback, after SCRIPT FLUSH too', async () => {
  const r = client();
  r.defineCommand('rateLimit', { numberOfKeys: 1, lua: RATE_LIMIT });
  await r.del('rl:test');
  let [consumed, ttl] = await r.rateLimit('rl:test', 1, 60);
  assert.equal(consumed, 1);
  assert.ok(ttl > 0 && ttl <= 60000, `ttl ${ttl}`);
  [consumed] = await r.rateLimit('rl:test', 3, 60);
  assert.equal(consumed, 4);
  // The cache forgets the script: ioredis gets NOSCRIPT and resends with EVAL.
  await r.script('FLUSH');
  [consumed] = await r.rateLimit('rl:test', 1, 60);
  assert.equal(consumed, 5);
  // Many keys, so they spread over every shard.
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => r.rateLimit(`rl:key:${i}`, 2, 30)),
  );
  for (const [c, t] of results) {
    assert.equal(c, 2);
    assert.ok(t > 0);
  }
  r.disconnect();
});

test('lock acquire / extend / release with SELECT inside the script', async () => {
  const r = client();
  for (const [name, lua] of [['lockAcquire', LOCK_ACQUIRE], ['lockExtend', LOCK_EXTEND], ['lockRelease', LOCK_RELEASE]]) {
    r.defineCommand(name, { numberOfKeys: 1, lua });
  }
  await r.select(0);
  assert.equal(await r.lockAcquire('lock:schedule', 'owner-a', 10000, 2), 1);
  assert.equal(await r.lockAcquire('lock:schedule', 'owner-b', 10000, 2), 0);
  assert.equal(await r.lockExtend('lock:schedule', 'owner-a', 20000, 2), 1);
  assert.equal(await r.lockExtend('lock:schedule', 'owner-b', 20000, 2), 0);
  // The lock lives in database 2; the connection stays in database 0.
  assert.equal(await r.exists('lock:schedule'), 0);
  const db2 = client({ db: 2 });
  assert.equal(await db2.get('lock:schedule'), 'owner-a');
  const pttl = await db2.pttl('lock:schedule');
  assert.ok(pttl > 10000, `pttl ${pttl}`);
  assert.equal(await r.lockRelease('lock:schedule', 'owner-b', 2), 0);
  assert.equal(await r.lockRelease('lock:schedule', 'owner-a', 2), 1);
  assert.equal(await db2.exists('lock:schedule'), 0);
  db2.disconnect();
  r.disconnect();
});

test('pipelined MULTI INCRBY PTTL EXEC (the login counter)', async () => {
  const r = client();
  await r.del('login:attempts');
  await r.pexpire('login:attempts', 1000);
  const res = await r.multi().incrby('login:attempts', 1).pttl('login:attempts').exec();
  assert.deepEqual(res, [[null, 1], [null, -1]]);
  await r.expire('login:attempts', 900);
  const res2 = await r.multi().incrby('login:attempts', 2).pttl('login:attempts').exec();
  assert.equal(res2[0][1], 3);
  assert.ok(res2[1][1] > 0);
  // A refused command inside MULTI aborts EXEC with EXECABORT.
  await assert.rejects(r.multi().incrby('login:attempts', 'x', 'y').exec(), /EXECABORT/);
  // WATCH from another client aborts the transaction: exec() resolves to null.
  const other = client();
  await r.watch('login:attempts');
  await other.incr('login:attempts');
  assert.equal(await r.multi().set('login:attempts', 0).exec(), null);
  other.disconnect();
  r.disconnect();
});

test('pub/sub between connections on different shards, binary payloads', async () => {
  const subs = Array.from({ length: 6 }, () => client());
  const pub = client();
  const got = subs.map(() => []);
  await Promise.all(
    subs.map(async (s, i) => {
      s.on('messageBuffer', (channel, message) => got[i].push([channel.toString(), message]));
      await s.subscribe('directus:bus');
    }),
  );
  const payload = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x0d, 0x0a, 0x00, 0xff, 0x10]);
  assert.equal(await pub.publish('directus:bus', payload), subs.length);
  assert.equal(await pub.publish('directus:bus', 'second'), subs.length);
  const deadline = Date.now() + 5000;
  while (got.some((g) => g.length < 2) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 10));
  }
  for (const g of got) {
    assert.equal(g.length, 2);
    assert.deepEqual(g[0], ['directus:bus', payload]);
    assert.equal(g[1][1].toString(), 'second');
  }
  // Pattern subscribers too.
  const psub = client();
  const pgot = [];
  psub.on('pmessage', (pattern, channel, message) => pgot.push([pattern, channel, message]));
  await psub.psubscribe('directus:*');
  assert.equal(await pub.publish('directus:cache', 'clear'), 1);
  while (pgot.length < 1 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.deepEqual(pgot[0], ['directus:*', 'directus:cache', 'clear']);
  for (const s of [...subs, psub, pub]) s.disconnect();
});
