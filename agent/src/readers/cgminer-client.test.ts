/** The cgminer wire client against raw TCP servers: replies in pieces, without NUL, too large. */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cgminerRequest, MAX_REPLY_BYTES } from './cgminer-client.js';

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** A server that answers the first command with `reply(socket)`. */
async function server(reply: (socket: net.Socket) => void): Promise<number> {
  const srv = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => reply(socket));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return (srv.address() as net.AddressInfo).port;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ask(port: number, timeoutMs = 2000) {
  return cgminerRequest({
    host: '127.0.0.1',
    port,
    command: 'summary',
    signal: new AbortController().signal,
    deadline: performance.now() + timeoutMs,
  });
}

describe('cgminerRequest', () => {
  it('joins a reply that arrives in several reads, a UTF-8 character split across two of them', async () => {
    const text = JSON.stringify({ STATUS: [{ STATUS: 'S', Msg: 'Température 72 °C' }], pad: 'x'.repeat(3000) });
    const bytes = Buffer.from(text, 'utf8');
    const cut = bytes.indexOf(Buffer.from('°')) + 1; // inside the two-byte character
    const port = await server(async (socket) => {
      socket.write(bytes.subarray(0, cut));
      await pause(30);
      socket.write(bytes.subarray(cut, cut + 1000));
      await pause(30);
      socket.write(Buffer.concat([bytes.subarray(cut + 1000), Buffer.from([0])]));
    });
    expect(await ask(port)).toEqual({ ok: true, text });
  });

  it('takes a reply ended by closing the connection instead of a NUL', async () => {
    const port = await server(async (socket) => {
      socket.write('{"STATUS":');
      await pause(30);
      socket.end('[{"STATUS":"S"}]}');
    });
    expect(await ask(port)).toEqual({ ok: true, text: '{"STATUS":[{"STATUS":"S"}]}' });
  });

  it('keeps concurrent replies apart although they share one read buffer', async () => {
    const port = await server(async (socket) => {
      const n = socket.remotePort ?? 0;
      socket.write(`{"n":${n},"a":"`);
      await pause(10 + (n % 7));
      socket.write(`${'y'.repeat(n % 97)}"}\u0000`);
    });
    const results = await Promise.all(Array.from({ length: 20 }, () => ask(port)));
    for (const r of results) {
      if (!r.ok) throw new Error(r.error.message);
      const v = JSON.parse(r.text) as { n: number; a: string };
      expect(v.a).toBe('y'.repeat(v.n % 97));
    }
  });

  it('refuses a reply larger than the cap, and times out a rig that never answers', async () => {
    const big = await server((socket) => {
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      for (let sent = 0; sent <= MAX_REPLY_BYTES; sent += chunk.length) socket.write(chunk);
    });
    expect(await ask(big)).toMatchObject({ ok: false, error: { kind: 'invalid_reply' } });
    const silent = await server(() => {});
    expect(await ask(silent, 200)).toMatchObject({ ok: false, error: { kind: 'timeout' } });
  });
});
