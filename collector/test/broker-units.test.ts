/** Pure parts of the broker module: packet scanner, limiter, ACL, credentials file, secrets. */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mayPublish, maySubscribe } from '../src/broker/auth.js';
import { addAgent, parseCredentials, readCredentials, removeAgent, toMosquittoAcl } from '../src/broker/credentials.js';
import { isLoopback } from '../src/broker/embedded.js';
import { externalFilters } from '../src/broker/external.js';
import { ConnectionLimiter, guardStream, LogThrottle, PacketScanner } from '../src/broker/guards.js';
import { hashSecret, verifySecret } from '../src/broker/secret.js';

describe('PacketScanner', () => {
  it('follows packets across chunk boundaries and refuses the first oversized one', () => {
    const s = new PacketScanner(10);
    // PINGREQ (2 bytes), then a publish of 8 bytes total (1 + 1 + 6), split everywhere
    expect(s.feed(Buffer.from([0xc0]))).toBe('ok');
    expect(s.feed(Buffer.from([0x00, 0x30]))).toBe('ok');
    expect(s.feed(Buffer.from([0x06, 1, 2, 3]))).toBe('ok');
    expect(s.feed(Buffer.from([4, 5, 6]))).toBe('ok');
    // next header announces 9 body bytes: 1 + 1 + 9 = 11 > 10
    expect(s.feed(Buffer.from([0x30, 0x09]))).toBe('too_large');
    expect(s.feed(Buffer.from([0xc0, 0x00]))).toBe('too_large');
  });

  it('decodes multi-byte remaining lengths and refuses a fifth length byte', () => {
    const ok = new PacketScanner(300);
    expect(ok.feed(Buffer.from([0x30, 0x80]))).toBe('ok');
    expect(ok.feed(Buffer.from([0x02]))).toBe('ok'); // 256 + 3 header bytes = 259
    expect(new PacketScanner(200).feed(Buffer.from([0x30, 0x80, 0x02]))).toBe('too_large');
    expect(new PacketScanner(1 << 30).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe('malformed');
  });
});

describe('guardStream', () => {
  /** A socket stand-in that records each write call it gets: single writes and gathered ones. */
  function recordingSocket() {
    const calls: string[][] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        calls.push([chunk.toString()]);
        callback();
      },
      writev(chunks, callback) {
        calls.push(chunks.map(({ chunk }) => (chunk as Buffer).toString()));
        callback();
      },
    });
    return { socket, calls };
  }

  it('hands the pieces written while corked to the socket in one call, in order', async () => {
    const { socket, calls } = recordingSocket();
    const guarded = guardStream(socket, 1024, () => {});
    // What mqtt-packet does for each packet: cork for the tick, write the pieces.
    guarded.cork();
    const done: string[] = [];
    for (const piece of ['header', 'topic', 'payload']) guarded.write(Buffer.from(piece), () => done.push(piece));
    guarded.write(Buffer.from('next-packet'), () => done.push('next-packet'));
    await new Promise<void>((resolve) => process.nextTick(resolve));
    guarded.uncork();
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(calls).toEqual([['header', 'topic', 'payload', 'next-packet']]);
    expect(done).toEqual(['header', 'topic', 'payload', 'next-packet']);
    // An uncorked write still goes through on its own.
    guarded.write(Buffer.from('alone'));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(calls.at(-1)).toEqual(['alone']);
  });
});

describe('ConnectionLimiter', () => {
  it('caps per address and in total, and releases', () => {
    const l = new ConnectionLimiter({ maxConnections: 3, maxPerAddress: 2, connectsPerMinute: 100 });
    expect(l.admit('a', 0)).toBe('ok');
    expect(l.admit('a', 0)).toBe('ok');
    expect(l.admit('a', 0)).toBe('too_many_from_address');
    expect(l.admit('b', 0)).toBe('ok');
    expect(l.admit('c', 0)).toBe('too_many_connections');
    l.release('a');
    expect(l.admit('c', 0)).toBe('ok');
  });

  it('refills the per-address bucket over time', () => {
    const l = new ConnectionLimiter({ maxConnections: 100, maxPerAddress: 100, connectsPerMinute: 2 });
    expect(l.admit('a', 0)).toBe('ok');
    expect(l.admit('a', 0)).toBe('ok');
    expect(l.admit('a', 1_000)).toBe('rate_limited');
    expect(l.admit('b', 1_000)).toBe('ok');
    expect(l.admit('a', 31_000)).toBe('ok');
  });

  it('LogThrottle logs a key once per window', () => {
    const t = new LogThrottle(1_000);
    expect(t.shouldLog('x', 0)).toBe(true);
    expect(t.shouldLog('x', 999)).toBe(false);
    expect(t.shouldLog('y', 999)).toBe(true);
    expect(t.shouldLog('x', 1_000)).toBe(true);
  });
});

describe('ACL', () => {
  const agent = { kind: 'agent', username: 's.h', site: 's', host: 'h' } as const;
  const anon = { kind: 'anonymous' } as const;

  it('lets an agent publish only its own birth/state/report', () => {
    expect(mayPublish(agent, 'hw/v1/s/h/report')).toBe(true);
    expect(mayPublish(agent, 'hw/v1/s/h/birth')).toBe(true);
    expect(mayPublish(agent, 'hw/v1/s/h/state')).toBe(true);
    for (const t of [
      'hw/v1/s/h/ack',
      'hw/v1/s/h/cmd',
      'hw/v1/s/x/report',
      'hw/v1/x/h/report',
      'hw/v1/_collector/state',
      'x',
    ]) {
      expect(mayPublish(agent, t), t).toBe(false);
    }
    expect(mayPublish(anon, 'hw/v1/any/host/report')).toBe(true);
    expect(mayPublish(anon, 'hw/v1/any/host/ack')).toBe(false);
    expect(mayPublish(anon, 'hw/v1/_collector/state')).toBe(false);
  });

  it('lets an agent subscribe only to exact own ack/cmd and the collector state', () => {
    expect(maySubscribe(agent, 'hw/v1/s/h/ack')).toBe(true);
    expect(maySubscribe(agent, 'hw/v1/s/h/cmd')).toBe(true);
    expect(maySubscribe(agent, 'hw/v1/_collector/state')).toBe(true);
    for (const f of [
      'hw/v1/s/+/ack',
      'hw/v1/s/h/#',
      '#',
      '$SYS/#',
      'hw/v1/s/h/report',
      'hw/v1/t/h/ack',
      '$share/g/hw/v1/s/h/ack',
    ]) {
      expect(maySubscribe(agent, f), f).toBe(false);
    }
    expect(maySubscribe(anon, 'hw/v1/x/y/cmd')).toBe(true);
    expect(maySubscribe(anon, 'hw/v1/+/y/cmd')).toBe(false);
  });
});

describe('credentials file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hw-cred-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds agents with mode 0600, refuses duplicates, removes them', async () => {
    const file = join(dir, 'sub', 'creds.yaml');
    const a = await addAgent(file, 'farm1', 'rack-01', { brokerUrl: 'mqtts://collector:8883' });
    expect(a.username).toBe('farm1.rack-01');
    expect(a.password.length).toBeGreaterThanOrEqual(40);
    expect(a.snippet).toContain('mqtts://collector:8883');
    expect(a.snippet).toContain(a.password);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(a.password);
    await expect(addAgent(file, 'farm1', 'rack-01')).rejects.toThrow(/already has credentials.*remove it first/);
    await expect(addAgent(file, 'farm1', 'rack-01', { username: 'other' })).rejects.toThrow(/farm1\/rack-01 already/);
    await expect(addAgent(file, 'Farm!', 'x')).rejects.toThrow(/Invalid site name/);
    const b = await addAgent(file, 'farm1', 'rack-02');
    const read = await readCredentials(file);
    expect(read.agents.map((x) => x.username)).toEqual([a.username, b.username]);
    expect(await verifySecret(a.password, read.agents[0]?.secret_hash ?? '')).toBe(true);
    expect(await verifySecret(b.password, read.agents[0]?.secret_hash ?? '')).toBe(false);
    expect(await removeAgent(file, a.username)).toBe(true);
    expect((await readCredentials(file)).agents.map((x) => x.username)).toEqual([b.username]);
    expect(await removeAgent(join(dir, 'missing.yaml'), 'x')).toBe(false);
  });

  it('skips invalid entries with a reason and drops duplicated usernames', async () => {
    const hash = await hashSecret('pw', { N: 1024, r: 8, p: 1 });
    const parsed = parseCredentials(
      [
        'agents:',
        `  - { username: ok.one, site: s, host: h, secret_hash: "${hash}" }`,
        `  - { username: bad.site, site: "S S", host: h, secret_hash: "${hash}" }`,
        '  - { username: bad.hash, site: s, host: h2, secret_hash: "plain" }',
        `  - { username: dup, site: s, host: h3, secret_hash: "${hash}" }`,
        `  - { username: dup, site: s, host: h4, secret_hash: "${hash}" }`,
      ].join('\n'),
      'test.yaml',
    );
    expect(parsed.agents.map((a) => a.username)).toEqual(['ok.one']);
    expect(parsed.problems).toHaveLength(3);
    expect(parsed.problems[0]).toMatch(/agents\[1\]\.site/);
    expect(() => parseCredentials('agents: [', 'x.yaml')).toThrow(/not valid YAML/);
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'agents: 5\n');
    await expect(readCredentials(file)).rejects.toThrow(/agents must be a list/);
  });

  it('writes a mosquitto ACL with the same rules', () => {
    const acl = toMosquittoAcl([{ username: 'a.b', site: 'a', host: 'b', secret_hash: '' }]);
    expect(acl).toContain('user a.b\ntopic write hw/v1/a/b/birth');
    expect(acl).toContain('topic read hw/v1/a/b/ack');
    expect(acl).toContain('user hashwatch-collector\ntopic read hw/v1/+/+/birth');
  });
});

describe('secrets and helpers', () => {
  it('hashes with salt and verifies in constant time; rejects tampered hashes', async () => {
    const h1 = await hashSecret('pw', { N: 1024, r: 8, p: 1 });
    const h2 = await hashSecret('pw', { N: 1024, r: 8, p: 1 });
    expect(h1).not.toBe(h2);
    expect(h1).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(await verifySecret('pw', h1)).toBe(true);
    expect(await verifySecret('pW', h1)).toBe(false);
    expect(await verifySecret('pw', h1.replace('$1024$', '$1000$'))).toBe(false); // not a power of two
    expect(await verifySecret('pw', 'scrypt$1073741824$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA')).toBe(false);
  });

  it('builds external filters per site and with a share group', () => {
    expect(externalFilters({ sites: [], share_group: '' })).toEqual([
      'hw/v1/+/+/birth',
      'hw/v1/+/+/state',
      'hw/v1/+/+/report',
    ]);
    expect(externalFilters({ sites: ['a', 'b'], share_group: 'g' })).toEqual([
      '$share/g/hw/v1/a/+/birth',
      '$share/g/hw/v1/a/+/state',
      '$share/g/hw/v1/a/+/report',
      '$share/g/hw/v1/b/+/birth',
      '$share/g/hw/v1/b/+/state',
      '$share/g/hw/v1/b/+/report',
    ]);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'collector']) expect(isLoopback(h), h).toBe(false);
  });
});
