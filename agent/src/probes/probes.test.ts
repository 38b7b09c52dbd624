import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ProbeResult, validate } from '@hashwatch/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SimUplink } from '../sim/uplink.js';
import type { ProbeTarget } from '../targets.js';
import { parseHostPort } from './attempt.js';
import { dnsProbe } from './dns.js';
import { createGatewayProbe, parseDefaultGateway } from './gateway.js';
import { httpProbe } from './http.js';
import { createIcmpProbe, parsePingTime } from './icmp.js';
import { PROBES, probeFor } from './index.js';
import { runProbes } from './run.js';
import { judgeStratumLine, stratumProbe } from './stratum.js';
import { tcpProbe } from './tcp.js';

const opts = { timeoutMs: 1000, attempts: 2, now: () => Date.now() };
const never = () => new AbortController().signal;

function valid(r: ProbeResult): ProbeResult {
  const checked = validate(
    'report',
    { v: 1, boot_id: 'test-boot-1', seq: 0, ts: r.ts, interval_ms: 10_000, rigs: [], probes: [r] },
    Date.now(),
  );
  if (!checked.ok) throw new Error(`probe result fails the schema: ${checked.error.message}`);
  return r;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()?.();
});

/** A loopback TCP server whose connection handler is `onConn`. */
async function server(onConn: (s: net.Socket, n: number) => void): Promise<number> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    onConn(s, n++);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return (srv.address() as net.AddressInfo).port;
}

/** A port with nothing listening on it (bound then closed). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const t = (kind: ProbeTarget['kind'], address: string, extra: Partial<ProbeTarget> = {}): ProbeTarget => ({
  target: `t-${kind}`,
  kind,
  role: 'internet',
  address,
  ...extra,
});

describe('registry', () => {
  it('lists one probe per kind', () => {
    for (const kind of ['gateway', 'dns', 'tcp', 'stratum', 'http', 'icmp'] as const) {
      expect(probeFor(kind).kind).toBe(kind);
    }
    expect(Object.keys(PROBES)).toHaveLength(6);
  });
  it('parses addresses', () => {
    expect(parseHostPort('10.0.0.1:3333')).toEqual({ host: '10.0.0.1', port: 3333 });
    expect(parseHostPort('[::1]:53')).toEqual({ host: '::1', port: 53 });
    expect(parseHostPort('10.0.0.1', 80)).toEqual({ host: '10.0.0.1', port: 80 });
    expect(parseHostPort('10.0.0.1')).toBeUndefined();
    expect(parseHostPort('h:99999')).toBeUndefined();
  });
});

describe('tcp probe', () => {
  it('accepting listener: ok with latency', async () => {
    const port = await server((s) => s.end());
    const r = valid(await tcpProbe.probe(t('tcp', `127.0.0.1:${port}`), never(), opts));
    expect(r).toMatchObject({ ok: true, attempts: 2, loss_ratio: 0 });
    expect(r.latency_ms).toBeGreaterThanOrEqual(0);
    expect(r.error_class).toBeUndefined();
  });
  it('refused: not ok, class refused', async () => {
    const r = valid(await tcpProbe.probe(t('tcp', `127.0.0.1:${await closedPort()}`), never(), opts));
    expect(r).toMatchObject({ ok: false, loss_ratio: 1, error_class: 'refused' });
    expect(r.latency_ms).toBeUndefined();
  });
  it('bad address: class other', async () => {
    const r = valid(await tcpProbe.probe(t('tcp', 'no-port-here'), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'other' });
  });
});

describe('gateway probe', () => {
  it('reads the default route from /proc/net/route text', () => {
    const table =
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
    expect(parseDefaultGateway(table)).toBe('192.0.2.1');
    expect(parseDefaultGateway(table.split('\n').slice(0, 2).join('\n'))).toBeUndefined();
  });
  it('a refused connection proves the gateway is up', async () => {
    const r = valid(await createGatewayProbe().probe(t('gateway', `127.0.0.1:${await closedPort()}`), never(), opts));
    expect(r).toMatchObject({ ok: true, loss_ratio: 0 });
  });
  it('auto without a default route: unreachable with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hw-route-'));
    closers.push(async () => rmSync(dir, { recursive: true }));
    const file = join(dir, 'route');
    writeFileSync(file, 'Iface\tDestination\tGateway \tFlags\nlo\t0000007F\t00000000\t0001\n');
    const r = valid(await createGatewayProbe(file).probe(t('gateway', 'auto'), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'unreachable' });
    expect(r.error).toMatch(/No default route/);
  });
  it('auto resolves 127.0.0.1 from a route file and probes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hw-route-'));
    closers.push(async () => rmSync(dir, { recursive: true }));
    const file = join(dir, 'route');
    writeFileSync(file, 'Iface\tDestination\tGateway \tFlags\nlo\t00000000\t0100007F\t0003\n');
    const r = valid(await createGatewayProbe(file).probe(t('gateway', 'auto'), never(), opts));
    expect(r.ok).toBe(true); // port 80 on loopback answers or refuses: either proves it is up
  });
});

describe('stratum probe', () => {
  it('judges lines', () => {
    expect(judgeStratumLine('{"id":1,"result":[[],"ab",4],"error":null}')).toEqual({ ok: true });
    expect(judgeStratumLine('{"id":null,"method":"mining.set_difficulty","params":[1]}')).toBeUndefined();
    expect(judgeStratumLine('{"id":1,"result":null,"error":[20,"x",null]}')).toMatchObject({ ok: false });
    expect(judgeStratumLine('<html>')).toMatchObject({ ok: false });
  });
  it('a pool that answers subscribe: ok', async () => {
    const uplink = new SimUplink();
    await uplink.start();
    closers.push(() => uplink.stop());
    const r = valid(await stratumProbe.probe(t('stratum', `127.0.0.1:${uplink.stratumPort}`), never(), opts));
    expect(r).toMatchObject({ ok: true, loss_ratio: 0 });
    expect(uplink.subscribes).toBe(2);
  });
  it('a notification before the reply is skipped', async () => {
    const port = await server((s) =>
      s.once('data', () =>
        s.write(
          '{"id":null,"method":"mining.set_difficulty","params":[8]}\n{"id":1,"result":[[],"00",4],"error":null}\n',
        ),
      ),
    );
    expect((await stratumProbe.probe(t('stratum', `127.0.0.1:${port}`), never(), opts)).ok).toBe(true);
  });
  it('garbage: protocol', async () => {
    const port = await server((s) => s.once('data', () => s.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const r = valid(await stratumProbe.probe(t('stratum', `127.0.0.1:${port}`), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'protocol' });
  });
  it('accept and never answer: timeout', async () => {
    const port = await server(() => {});
    const r = valid(await stratumProbe.probe(t('stratum', `127.0.0.1:${port}`), never(), opts));
    expect(r).toMatchObject({ ok: false, loss_ratio: 1, error_class: 'timeout' });
  });
  it('closed without a reply: protocol; refused: refused', async () => {
    const port = await server((s) => s.once('data', () => s.end()));
    expect((await stratumProbe.probe(t('stratum', `127.0.0.1:${port}`), never(), opts)).error_class).toBe('protocol');
    const r = await stratumProbe.probe(t('stratum', `127.0.0.1:${await closedPort()}`), never(), opts);
    expect(r.error_class).toBe('refused');
  });
  it('answers on every other connection: loss ratio 0.5', async () => {
    const port = await server((s, n) =>
      s.once('data', () => (n % 2 === 0 ? s.write('{"id":1,"result":[[],"00",4],"error":null}\n') : s.end())),
    );
    const r = valid(await stratumProbe.probe(t('stratum', `127.0.0.1:${port}`), never(), { ...opts, attempts: 4 }));
    expect(r).toMatchObject({ ok: true, attempts: 4, loss_ratio: 0.5, error_class: 'protocol' });
  });
});

describe('http probe', () => {
  async function httpServer(handler: http.RequestListener): Promise<number> {
    const srv = http.createServer(handler);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    closers.push(async () => {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    });
    return (srv.address() as net.AddressInfo).port;
  }
  it('any status is reachable (even 503)', async () => {
    const port = await httpServer((_q, res) => res.writeHead(503).end('down for maintenance'));
    const r = valid(await httpProbe.probe(t('http', `http://127.0.0.1:${port}/`), never(), opts));
    expect(r).toMatchObject({ ok: true, loss_ratio: 0 });
  });
  it('no answer: timeout', async () => {
    const port = await httpServer(() => {});
    const r = valid(await httpProbe.probe(t('http', `http://127.0.0.1:${port}/`), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'timeout' });
  });
  it('refused: refused', async () => {
    const r = valid(await httpProbe.probe(t('http', `http://127.0.0.1:${await closedPort()}/`), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'refused' });
  });
  it('garbage instead of HTTP: not ok', async () => {
    const port = await server((s) => s.once('data', () => s.end('\x00\x01garbage\r\n\r\n')));
    const r = valid(await httpProbe.probe(t('http', `http://127.0.0.1:${port}/`), never(), opts));
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/GET http/);
  });
  it('not a URL: other', async () => {
    const r = valid(await httpProbe.probe(t('http', 'not a url'), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'other' });
  });
});

describe('dns probe against the sim DNS server', () => {
  let uplink: SimUplink;
  beforeAll(async () => {
    uplink = new SimUplink();
    await uplink.start();
  });
  afterAll(() => uplink.stop());
  const target = (name: string) => t('dns', name, { role: 'dns', resolver: `127.0.0.1:${uplink.dnsPort}` });

  it('answers: ok', async () => {
    const r = valid(await dnsProbe.probe(target(uplink.poolName), never(), opts));
    expect(r).toMatchObject({ ok: true, loss_ratio: 0 });
  });
  it('unknown name (NXDOMAIN): dns', async () => {
    const r = valid(await dnsProbe.probe(target('nope.invalid'), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'dns' });
  });
  it('SERVFAIL (dnsFailure): dns', async () => {
    uplink.dnsFailure();
    try {
      const r = valid(await dnsProbe.probe(target(uplink.poolName), never(), opts));
      expect(r).toMatchObject({ ok: false, error_class: 'dns' });
    } finally {
      await uplink.restore();
    }
  });
  it('no answer (cut): timeout', async () => {
    await uplink.cut();
    try {
      const r = valid(await dnsProbe.probe(target(uplink.poolName), never(), opts));
      expect(r).toMatchObject({ ok: false, loss_ratio: 1, error_class: 'timeout' });
    } finally {
      await uplink.restore();
    }
  });
});

describe('icmp probe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hw-ping-'));
  afterAll(() => rmSync(dir, { recursive: true }));
  function script(name: string, body: string): string {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
    return p;
  }

  it('parses ping output', () => {
    expect(parsePingTime('64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms')).toBe(0.045);
    expect(parsePingTime('no reply')).toBeUndefined();
  });
  it('ping missing: permission, falls back to TCP and says so', async () => {
    const r = valid(await createIcmpProbe(join(dir, 'no-such-ping')).probe(t('icmp', '127.0.0.1'), never(), opts));
    expect(r.error_class).toBe('permission');
    expect(r.error).toMatch(/not installed.*fell back to TCP connect to 127\.0\.0\.1:80/);
    expect(r.ok).toBe(true); // loopback port 80 answers or refuses: both prove the host is up
  });
  it('ping not permitted: permission with the fallback', async () => {
    const ping = script('ping-eperm', 'echo "ping: socket: Operation not permitted" >&2; exit 2');
    const r = valid(await createIcmpProbe(ping).probe(t('icmp', '127.0.0.1'), never(), opts));
    expect(r.error_class).toBe('permission');
    expect(r.error).toMatch(/not permitted.*fell back/);
  });
  it('ping that works: latency from its output', async () => {
    const ping = script('ping-ok', 'echo "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.250 ms"; exit 0');
    const r = valid(await createIcmpProbe(ping).probe(t('icmp', '127.0.0.1'), never(), opts));
    expect(r).toMatchObject({ ok: true, latency_ms: 0.25, loss_ratio: 0 });
    expect(r.error_class).toBeUndefined();
  });
  it('ping with no reply: timeout', async () => {
    const ping = script('ping-lost', 'echo "1 packets transmitted, 0 received, 100% packet loss"; exit 1');
    const r = valid(await createIcmpProbe(ping).probe(t('icmp', '127.0.0.1'), never(), opts));
    expect(r).toMatchObject({ ok: false, error_class: 'timeout', loss_ratio: 1 });
  });
});

describe('runProbes', () => {
  it('runs targets concurrently within the cap', async () => {
    const hang = await server(() => {});
    const targets = Array.from({ length: 6 }, (_, i) => ({ ...t('stratum', `127.0.0.1:${hang}`), target: `p${i}` }));
    const started = performance.now();
    const results = await runProbes(targets, never(), { timeoutMs: 200, attempts: 2, now: () => Date.now() });
    const elapsed = performance.now() - started;
    expect(results.map((r) => r.target)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
    expect(results.every((r) => !r.ok && r.error_class === 'timeout')).toBe(true);
    // Sequential would be 6 × 2 × 200 ms; concurrent is one probe's window (+ generous slack).
    expect(elapsed).toBeLessThan(6 * 2 * 200);
  });
});
