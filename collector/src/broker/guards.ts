/**
 * Connection-level guards of the embedded broker, in front of aedes: a cap on MQTT packet size
 * (aedes 1.x / mqtt-packet have none, so a client could make the parser buffer 256 MiB), and
 * per-address connection caps and rates. The scanner and limiter are pure (time is an argument);
 * `guardStream` is the thin stream adapter between a socket and aedes.
 */
import { Duplex } from 'node:stream';

export type PacketScanVerdict = 'ok' | 'too_large' | 'malformed';

/**
 * Follows MQTT fixed headers across chunks without copying: reads each packet's "remaining length"
 * varint, then skips that many bytes. Refuses a packet as soon as its header announces more than
 * `maxPacketBytes`, before any of its body is buffered anywhere.
 */
export class PacketScanner {
  private readonly maxPacketBytes: number;
  /** Bytes of the current packet body still to skip. */
  private skip = 0;
  /** 0 = expect the type byte; 1..4 = reading remaining-length byte n. */
  private lengthByte = 0;
  private length = 0;
  private multiplier = 1;
  private failed: PacketScanVerdict = 'ok';

  constructor(maxPacketBytes: number) {
    this.maxPacketBytes = maxPacketBytes;
  }

  /** Feeds the next chunk of the stream; once not `ok`, stays so. */
  feed(chunk: Uint8Array): PacketScanVerdict {
    let i = 0;
    while (this.failed === 'ok' && i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.lengthByte === 0) {
        this.lengthByte = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (byte & 0x80) {
        if (this.lengthByte === 4) this.failed = 'malformed';
        this.lengthByte++;
        continue;
      }
      // fixed header: 1 type byte + `lengthByte` length bytes
      if (this.length + 1 + this.lengthByte > this.maxPacketBytes) this.failed = 'too_large';
      this.skip = this.length;
      this.lengthByte = 0;
    }
    return this.failed;
  }
}

/**
 * Wraps a socket-like duplex so every inbound byte passes the scanner before aedes parses it.
 * On a refusal `onRefuse` is called once and the connection is destroyed.
 */
export function guardStream(
  inner: Duplex,
  maxPacketBytes: number,
  onRefuse: (verdict: Exclude<PacketScanVerdict, 'ok'>) => void,
): Duplex {
  const scanner = new PacketScanner(maxPacketBytes);
  const outer = new Duplex({
    read() {
      inner.resume();
    },
    write(chunk: Buffer, encoding, callback) {
      if (inner.destroyed) {
        callback();
        return;
      }
      inner.write(chunk, encoding, callback);
    },
    // aedes writes each packet through mqtt-packet, which corks this stream for the tick and writes
    // a packet in pieces (header, topic, payload): without writev each piece was a write syscall
    // of its own, one after the other. Together they now go out in one (finding 31).
    writev(chunks, callback) {
      if (inner.destroyed) {
        callback();
        return;
      }
      inner.cork();
      const last = chunks.length - 1;
      chunks.forEach(({ chunk, encoding }, i) => {
        if (i === last) inner.write(chunk, encoding, callback);
        else inner.write(chunk, encoding);
      });
      inner.uncork();
    },
    final(callback) {
      inner.end(callback);
    },
    destroy(err, callback) {
      inner.destroy();
      callback(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    const verdict = scanner.feed(chunk);
    if (verdict !== 'ok') {
      inner.removeAllListeners('data');
      onRefuse(verdict);
      outer.destroy();
      return;
    }
    if (!outer.push(chunk)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (err) => outer.destroy(err));
  inner.on('close', () => outer.destroy());
  return outer;
}

export type AdmitVerdict = 'ok' | 'too_many_connections' | 'too_many_from_address' | 'rate_limited';

/** Concurrent-connection caps and a per-address token bucket for new connections. */
export class ConnectionLimiter {
  private readonly open = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private total = 0;

  constructor(private readonly limits: { maxConnections: number; maxPerAddress: number; connectsPerMinute: number }) {}

  /** Decides on a new connection from `address`; on `ok` the caller must `release` it when it closes. */
  admit(address: string, nowMs: number): AdmitVerdict {
    const perMs = this.limits.connectsPerMinute / 60_000;
    const bucket = this.buckets.get(address) ?? { tokens: this.limits.connectsPerMinute, atMs: nowMs };
    bucket.tokens = Math.min(this.limits.connectsPerMinute, bucket.tokens + (nowMs - bucket.atMs) * perMs);
    bucket.atMs = nowMs;
    this.buckets.set(address, bucket);
    if (bucket.tokens < 1) return 'rate_limited';
    bucket.tokens -= 1;
    if (this.total >= this.limits.maxConnections) return 'too_many_connections';
    const n = this.open.get(address) ?? 0;
    if (n >= this.limits.maxPerAddress) return 'too_many_from_address';
    this.open.set(address, n + 1);
    this.total++;
    return 'ok';
  }

  release(address: string): void {
    const n = this.open.get(address) ?? 0;
    if (n <= 1) this.open.delete(address);
    else this.open.set(address, n - 1);
    if (n > 0) this.total--;
  }

  /** Forgets full buckets of idle addresses so the map does not grow with every address ever seen. */
  prune(nowMs: number): void {
    const perMs = this.limits.connectsPerMinute / 60_000;
    for (const [address, b] of this.buckets) {
      if (b.tokens + (nowMs - b.atMs) * perMs >= this.limits.connectsPerMinute) this.buckets.delete(address);
    }
  }
}

/** "Log once per (key) per window": true when the caller should log now. */
export class LogThrottle {
  private readonly last = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  shouldLog(key: string, nowMs: number): boolean {
    const at = this.last.get(key);
    if (at !== undefined && nowMs - at < this.windowMs) return false;
    if (this.last.size > 10_000) {
      for (const [k, t] of this.last) if (nowMs - t >= this.windowMs) this.last.delete(k);
    }
    this.last.set(key, nowMs);
    return true;
  }
}
