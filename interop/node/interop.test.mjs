// The official Memphis Node.js SDK (memphis-dev 1.3.2) through its
// documented API, against the broker at MEMPHIS_HOST (run.sh starts the dev
// broker and sets it when none is given). MEMPHIS_KIND says which broker it
// is ("dev broker" or "Memphis 1.4.4"), where the two may differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sdk from 'memphis-dev';

const { createMemphisInstance } = sdk;

const env = {
  host: process.env.MEMPHIS_HOST ?? 'localhost',
  port: Number(process.env.MEMPHIS_PORT ?? 6666),
  user: process.env.MEMPHIS_USER ?? 'root',
  password: process.env.MEMPHIS_TOKEN ? '' : (process.env.MEMPHIS_PASSWORD ?? 'memphis'),
  token: process.env.MEMPHIS_TOKEN ?? '',
  kind: process.env.MEMPHIS_KIND ?? 'unknown broker',
  // A second broker in token mode, when the runner started one.
  tokenPort: process.env.INTEROP_TOKEN_PORT ? Number(process.env.INTEROP_TOKEN_PORT) : 0,
  token2: process.env.INTEROP_TOKEN ?? '',
};

let seq = 0;
const name = (prefix) => `${prefix}-${Date.now() % 1e9}-${++seq}`;

async function connect(overrides = {}) {
  const m = createMemphisInstance();
  await m.connect({
    host: env.host, port: env.port, username: env.user,
    password: env.password, connectionToken: env.token,
    timeoutMs: 10000, suppressLogs: true, ...overrides,
  });
  return m;
}

// fetchN fetches until n messages came or the deadline passed.
async function fetchN(consumer, n, withinMs, opts = {}) {
  const got = [];
  const deadline = Date.now() + withinMs;
  while (got.length < n && Date.now() < deadline) {
    got.push(...await consumer.fetch({ batchSize: n - got.length, ...opts }));
  }
  assert.ok(got.length >= n, `fetched ${got.length} messages within ${withinMs} ms, want ${n}`);
  return got;
}

const texts = (msgs) => msgs.map((m) => m.getData().toString()).sort();

test('connect with a password, and a wrong one is refused', async (t) => {
  if (env.token) return t.skip('the broker at MEMPHIS_HOST is in token mode');
  const m = await connect();
  await m.close();
  await assert.rejects(connect({ password: `wrong-${env.password}`, reconnect: false }));
});

test('connect with a connection token', async () => {
  if (!env.tokenPort) {
    // A broker in password mode refuses a token.
    await assert.rejects(connect({ password: '', connectionToken: 'not-a-password', reconnect: false }));
    return;
  }
  const m = await connect({ port: env.tokenPort, password: '', connectionToken: env.token2 });
  try {
    await m.station({ name: name('tok') });
  } finally {
    await m.close();
  }
  await assert.rejects(connect({ port: env.tokenPort, password: '', connectionToken: `wrong-${env.token2}`, reconnect: false }));
});

test('stations with options', async () => {
  const m = await connect();
  try {
    const st = name('opts');
    const s = await m.station({
      name: st, retentionType: 'message_age_sec', retentionValue: 600, storageType: 'memory',
      replicas: 1, idempotencyWindowMs: 30000, partitionsNumber: 3,
      sendPoisonMsgToDls: true, sendSchemaFailedMsgToDls: false, dlsStation: `${st}-dls`,
    });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    for (const n of [1, 2, 3]) {
      await p.produce({ message: Buffer.from('x'), asyncProduce: false, producerPartitionNumber: n });
    }
    // (A partition number past the last is refused by a promise this SDK
    // never awaits: an unhandled rejection, so it is not tried here.)
    await m.station({ name: st, partitionsNumber: 1 }); // exists: no error
    await assert.rejects(m.station({ name: `${st}-bad`, retentionValue: 10, idempotencyWindowMs: 60000 }));
    await s.destroy();
  } finally {
    await m.close();
  }
});

test('produce with headers and message ids: consumers see exactly the headers sent, a repeated id is stored once', async () => {
  const m = await connect();
  try {
    const st = name('hdr');
    const s = await m.station({ name: st });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    const h = m.headers();
    h.add('trace-id', 't-1');
    assert.throws(() => m.headers().add('$memphis_x', 'no'));
    await p.produce({ message: Buffer.from('sync'), headers: h, msgId: 'id-1', asyncProduce: false });
    await p.produce({ message: Buffer.from('sync again'), msgId: 'id-1', asyncProduce: false });
    await p.produce({ message: Buffer.from('async'), headers: { k: 'v' }, msgId: 'id-2', asyncProduce: true });
    const c = await m.consumer({ stationName: st, consumerName: 'c', batchMaxTimeToWaitMs: 500 });
    const msgs = await fetchN(c, 2, 20000);
    const want = {
      sync: { 'trace-id': 't-1', 'msg-id': 'id-1' },
      async: { k: 'v', 'msg-id': 'id-2' },
    };
    for (const msg of msgs) {
      const body = msg.getData().toString();
      assert.ok(body in want, `unexpected message ${body} (a repeated id stored twice?)`);
      assert.deepEqual(msg.getHeaders(), want[body], `${env.kind}: headers of ${body}`);
      msg.ack();
    }
    assert.equal((await c.fetch({ batchSize: 10 })).length, 0, 'the repeated id was stored');
    await s.destroy();
  } finally {
    await m.close();
  }
});

test('partitions by key and by number', async () => {
  const m = await connect();
  try {
    const st = name('part');
    const s = await m.station({ name: st, partitionsNumber: 3 });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    // This SDK takes a key's hash index (0..2) as the partition number
    // (1..3): a key of index 0 names no partition and fails, on every
    // broker. Keys of the other indexes go where consumers of the same key
    // read.
    const byKey = await m.consumer({ stationName: st, consumerName: 'by-key', batchMaxTimeToWaitMs: 300 });
    let placed = 0;
    let refused = 0;
    for (let i = 0; i < 12; i++) {
      const key = `customer-${i}`;
      try {
        await p.produce({ message: Buffer.from(key), producerPartitionKey: key, asyncProduce: false });
      } catch {
        refused++;
        continue;
      }
      placed++;
      const got = await fetchN(byKey, 1, 10000, { consumerPartitionKey: key });
      assert.deepEqual(texts(got), [key]);
      got[0].ack();
    }
    assert.ok(placed > 0 && refused > 0, `placed ${placed}, refused ${refused}: expected both`);
    await s.destroy();
    const stn = name('partn');
    const sn = await m.station({ name: stn, partitionsNumber: 3 });
    const pn = await m.producer({ stationName: stn, producerName: 'p' });
    await pn.produce({ message: Buffer.from('numbered'), producerPartitionNumber: 2, asyncProduce: false });
    const byNum = await m.consumer({ stationName: stn, consumerName: 'by-number', batchMaxTimeToWaitMs: 300 });
    assert.equal((await byNum.fetch({ batchSize: 10, consumerPartitionNumber: 1 })).length, 0);
    const two = await fetchN(byNum, 1, 10000, { consumerPartitionNumber: 2 });
    assert.deepEqual(texts(two), ['numbered']);
    await sn.destroy();
  } finally {
    await m.close();
  }
});

test('consume with an event handler', async () => {
  const m = await connect();
  try {
    const st = name('cons');
    const s = await m.station({ name: st, partitionsNumber: 2 });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    const n = 20;
    for (let i = 0; i < n; i++) await p.produce({ message: Buffer.from(`m${i}`) });
    const c = await m.consumer({ stationName: st, consumerName: 'c', pullIntervalMs: 50, batchMaxTimeToWaitMs: 100 });
    const seen = new Set();
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${seen.size} of ${n}`)), 30000);
      c.on('message', (msg) => {
        msg.ack();
        seen.add(msg.getData().toString());
        if (seen.size === n) { clearTimeout(timer); resolve(); }
      });
      c.on('error', () => {});
    });
    c.stop();
    await s.destroy();
  } finally {
    await m.close();
  }
});

test('nack and delay', async () => {
  const m = await connect();
  try {
    const st = name('nack');
    const s = await m.station({ name: st });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    const c = await m.consumer({ stationName: st, consumerName: 'c', maxMsgDeliveries: 5, batchMaxTimeToWaitMs: 200 });
    await p.produce({ message: Buffer.from('again'), asyncProduce: false });
    const [first] = await fetchN(c, 1, 10000);
    first.nack();
    const [second] = await fetchN(c, 1, 10000);
    assert.equal(second.getData().toString(), 'again');
    const start = Date.now();
    second.delay(2000);
    const [third] = await fetchN(c, 1, 15000);
    assert.ok(Date.now() - start >= 1800, `delayed message came back after ${Date.now() - start} ms`);
    third.ack();
    await s.destroy();
  } finally {
    await m.close();
  }
});

test('dead letters: by the client and poison, with headers saying why', async (t) => {
  const m = await connect();
  try {
    const st = name('dls');
    const dls = `${st}-dead`;
    const s = await m.station({ name: st, dlsStation: dls, sendPoisonMsgToDls: true });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    const c = await m.consumer({ stationName: st, consumerName: 'c', maxMsgDeliveries: 2, maxAckTimeMs: 1000, batchMaxTimeToWaitMs: 200 });
    await p.produce({ message: Buffer.from('given-up'), asyncProduce: false });
    const [g] = await fetchN(c, 1, 10000);
    g.deadLetter('no use');
    await p.produce({ message: Buffer.from('poison'), asyncProduce: false });
    for (let i = 0; i < 2; i++) {
      const [d] = await fetchN(c, 1, 15000);
      assert.equal(d.getData().toString(), 'poison');
    }
    // Keep pulling: the broker learns of the poison when a third delivery is due.
    for (const until = Date.now() + 2000; Date.now() < until;) {
      assert.equal((await c.fetch({ batchSize: 1 })).length, 0, 'a third delivery');
    }
    const reader = await m.consumer({ stationName: dls, consumerName: 'reader', batchMaxTimeToWaitMs: 500 });
    const seen = {};
    const copies = [];
    for (const until = Date.now() + 45000; (!seen['given-up'] || !seen.poison) && Date.now() < until;) {
      for (const msg of await reader.fetch({ batchSize: 10 })) {
        const body = msg.getData().toString();
        seen[body] = (seen[body] ?? 0) + 1;
        copies.push(msg);
      }
    }
    t.diagnostic(`${env.kind}: dead-letter station holds ${JSON.stringify(texts(copies))}`);
    assert.ok(seen['given-up'] && seen.poison, `${env.kind}: dead-letter station holds ${texts(copies)}`);
    for (const msg of copies) {
      const h = msg.getHeaders();
      assert.equal(h.station, st);
      assert.equal(h.type, 'unacked');
      msg.ack();
    }
    await s.destroy();
  } finally {
    await m.close();
  }
});

test('schemas of the four types', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'memphis-interop-'));
  const cases = [
    { type: 'json', file: 'p.json',
      content: '{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"]}',
      good: { name: 'Ada', age: 36 }, bad: { age: 'old' } },
    { type: 'protobuf', file: 'p.proto',
      content: 'syntax = "proto3";\nmessage Person {\n  string name = 1;\n  int32 age = 2;\n}\n',
      good: { name: 'Ada', age: 36 }, bad: { name: 42 } },
    { type: 'graphql', file: 'p.graphql',
      content: 'type Query {\n  name: String\n  age: Int\n}\n',
      good: 'query { name }', bad: 'query { salary }' },
    { type: 'avro', file: 'p.avsc',
      content: '{"type":"record","name":"Person","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}',
      good: { name: 'Ada', age: 36 }, bad: { name: 'Ada', age: 'old' } },
  ];
  const m = await connect();
  try {
    for (const tc of cases) {
      await t.test(tc.type, async () => {
        const path = join(dir, tc.file);
        writeFileSync(path, tc.content);
        const schema = name(`s-${tc.type}`);
        await m.createSchema({ schemaName: schema, schemaType: tc.type, schemaFilePath: path });
        const st = name(`sch-${tc.type}`);
        const s = await m.station({ name: st });
        await m.enforceSchema({ name: schema, stationName: st });
        const p = await m.producer({ stationName: st, producerName: 'p' });
        await p.produce({ message: tc.good, asyncProduce: false });
        await assert.rejects(p.produce({ message: tc.bad, asyncProduce: false }));
        const c = await m.consumer({ stationName: st, consumerName: 'c', batchMaxTimeToWaitMs: 300 });
        const [msg] = await fetchN(c, 1, 10000);
        const v = msg.getDataDeserialized();
        assert.ok(v !== undefined && v !== null, `${tc.type} decoded ${v}`);
        if (tc.type !== 'graphql') assert.equal(v.name, 'Ada');
        msg.ack();
        await m.detachSchema({ stationName: st });
        await s.destroy();
      });
    }
  } finally {
    await m.close();
  }
});

test('a short fetch waits for batchMaxTimeToWaitMs', async (t) => {
  const m = await connect();
  try {
    const st = name('short');
    const s = await m.station({ name: st });
    const p = await m.producer({ stationName: st, producerName: 'p' });
    for (let i = 0; i < 3; i++) await p.produce({ message: Buffer.from('m'), asyncProduce: false });
    const c = await m.consumer({ stationName: st, consumerName: 'c', batchMaxTimeToWaitMs: 1000 });
    const start = Date.now();
    const msgs = await c.fetch({ batchSize: 10 });
    const took = Date.now() - start;
    t.diagnostic(`${env.kind}: short fetch of ${msgs.length} of 10 took ${took} ms`);
    assert.equal(msgs.length, 3);
    assert.ok(took >= 900 && took < 4000, `${env.kind}: a short fetch took ${took} ms, want about 1000`);
    for (const msg of msgs) msg.ack();
    await s.destroy();
  } finally {
    await m.close();
  }
});

test('connection-level produce and fetchMessages, a producer to several stations', async () => {
  const m = await connect();
  try {
    const a = name('multi-a');
    const b = name('multi-b');
    await m.produce({ stationName: a, producerName: 'cp', message: Buffer.from('one'), asyncProduce: false });
    await m.produce({ stationName: a, producerName: 'cp', message: Buffer.from('two'), asyncProduce: false });
    await m.station({ name: b });
    const multi = await m.producer({ stationName: [a, b], producerName: 'both' });
    await multi.produce({ message: Buffer.from('three'), asyncProduce: false });
    const got = [];
    for (const until = Date.now() + 20000; got.length < 3 && Date.now() < until;) {
      got.push(...await m.fetchMessages({ stationName: a, consumerName: 'fm', batchSize: 10, batchMaxTimeToWaitMs: 300 }));
    }
    assert.deepEqual(texts(got), ['one', 'three', 'two']);
    for (const msg of got) msg.ack();
    for (const st of [a, b]) await (await m.station({ name: st })).destroy();
  } finally {
    await m.close();
  }
});

test('destroy producers, consumers and stations, several times over', async () => {
  const m = await connect();
  try {
    for (let round = 0; round < 5; round++) {
      const st = name('destroy');
      const s = await m.station({ name: st, partitionsNumber: 2 });
      const producers = [];
      for (const n of ['pa', 'pb', 'pc']) producers.push(await m.producer({ stationName: st, producerName: n }));
      await m.produce({ stationName: st, producerName: 'cached', message: Buffer.from('x'), asyncProduce: false });
      const c = await m.consumer({ stationName: st, consumerName: 'c' });
      await producers[0].destroy();
      await c.destroy();
      await s.destroy();
    }
  } finally {
    await m.close();
  }
});
