/**
 * A tiny UDP DNS server on 127.0.0.1: answers A queries for the names it knows, NXDOMAIN for
 * others, and can be told to fail (SERVFAIL) or to stay silent (a cut uplink: the query is lost).
 */
import dgram from 'node:dgram';

export type DnsMode = 'answer' | 'servfail' | 'silent';

/** Reads the question name of a DNS query (pure); undefined if malformed. */
export function parseQuestion(msg: Buffer): { name: string; type: number; end: number } | undefined {
  if (msg.length < 12) return undefined;
  let off = 12;
  const labels: string[] = [];
  for (let guard = 0; guard < 128; guard++) {
    const len = msg[off];
    if (len === undefined) return undefined;
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63 || off + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('ascii'));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off), end: off + 4 };
}

export class SimDnsServer {
  private socket: dgram.Socket | undefined;
  mode: DnsMode = 'answer';
  port = 0;

  constructor(private readonly records: Map<string, string>) {}

  async start(): Promise<void> {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      const reply = this.answer(msg);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    this.port = socket.address().port;
    this.socket = socket;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (this.mode === 'silent') return undefined;
    const q = parseQuestion(msg);
    if (!q) return undefined;
    const question = msg.subarray(12, q.end);
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    const rd = (msg[2] ?? 0) & 0x01;
    const ip = this.records.get(q.name);
    let rcode = 0;
    if (this.mode === 'servfail') rcode = 2;
    else if (!ip) rcode = 3;
    const withAnswer = rcode === 0 && q.type === 1 && ip !== undefined;
    header[2] = 0x80 | 0x04 | rd; // QR, AA, RD copied
    header[3] = 0x80 | rcode; // RA
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(withAnswer ? 1 : 0, 6);
    if (!withAnswer) return Buffer.concat([header, question]);
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6); // TTL
    rr.writeUInt16BE(4, 10);
    const parts = (ip as string).split('.').map(Number);
    for (let i = 0; i < 4; i++) rr[12 + i] = parts[i] ?? 0;
    return Buffer.concat([header, question, rr]);
  }
}
