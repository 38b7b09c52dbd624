/**
 * One HTTP(S) GET on node:http, for the `http` probe, the power meter and the AxeOS reader.
 *
 * Not fetch: the first fetch loads undici (its own HTTP parser compiled from WebAssembly, pools,
 * web streams), about 10 MB of resident memory in an agent that only needs a few GETs per round
 * (measured with the agent benchmark; node:http is loaded by Node's own modules anyway). Every
 * GET opens its own connection and closes it: no keep-alive pool, so no idle sockets between
 * rounds, and every probe attempt tests the path from connect to status line.
 *
 * Errors are Node's own (`code` = ECONNREFUSED, ECONNRESET, HPE_… for a reply that is not HTTP),
 * an abort rejects with the signal's reason (a `TimeoutError` from `AbortSignal.timeout`), a URL
 * that does not parse rejects with Node's `TypeError` ("Invalid URL"), so the callers' error
 * classification is the same as it was with fetch.
 */
import type { IncomingMessage } from 'node:http';

export interface HttpGetOptions {
  /** Aborts the request, including a body still arriving. */
  signal: AbortSignal;
  headers?: Record<string, string>;
  /**
   * Largest body read; a longer one rejects with code `ERR_BODY_TOO_LARGE`. 0 = resolve at the
   * status line and do not read the body (a reachability check).
   */
  maxBodyBytes: number;
}

export interface HttpGetResult {
  status: number;
  /** The body as UTF-8; empty when `maxBodyBytes` is 0 or the status is not 2xx (not read). */
  body: string;
}

type HttpModule = typeof import('node:http');
type Client = { get: HttpModule['get']; agent: import('node:http').Agent };
let httpClient: Promise<Client> | undefined;
let httpsClient: Promise<Client> | undefined;

/**
 * node:https (and TLS with it) is loaded only when an https URL is configured. One agent per
 * protocol, without keep-alive: `agent: false` would build a new Agent for every request.
 */
function clientFor(protocol: string): Promise<Client> {
  if (protocol === 'https:') {
    httpsClient ??= import('node:https').then((m) => ({ get: m.get, agent: new m.Agent({ keepAlive: false }) }));
    return httpsClient;
  }
  httpClient ??= import('node:http').then((m) => ({ get: m.get, agent: new m.Agent({ keepAlive: false }) }));
  return httpClient;
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** GETs `url`. Never leaves a socket open once it settles. */
export async function httpGet(url: string, options: HttpGetOptions): Promise<HttpGetResult> {
  const target = new URL(url);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw Object.assign(new TypeError(`Protocol "${target.protocol}" not supported; use http: or https:`), {
      code: 'ERR_INVALID_PROTOCOL',
    });
  }
  const client = await clientFor(target.protocol);
  const { signal, maxBodyBytes } = options;
  if (signal.aborted) throw abortReason(signal);
  return new Promise<HttpGetResult>((resolve, reject) => {
    let settled = false;
    let response: IncomingMessage | undefined;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const fail = (err: Error): void =>
      settle(() => {
        request.destroy();
        response?.destroy();
        reject(err);
      });
    const onAbort = (): void => fail(abortReason(signal));
    const request = client.get(target, { headers: options.headers ?? {}, agent: client.agent }, (res) => {
      response = res;
      const status = res.statusCode ?? 0;
      if (maxBodyBytes <= 0 || status < 200 || status > 299) {
        settle(() => {
          res.destroy();
          resolve({ status, body: '' });
        });
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxBodyBytes) {
          fail(Object.assign(new Error(`reply is larger than ${maxBodyBytes} bytes`), { code: 'ERR_BODY_TOO_LARGE' }));
        } else chunks.push(chunk);
      });
      res.on('end', () => settle(() => resolve({ status, body: Buffer.concat(chunks).toString('utf8') })));
      res.on('error', fail);
      res.on('close', () =>
        fail(Object.assign(new Error('the connection closed before the reply ended'), { code: 'ECONNRESET' })),
      );
    });
    request.on('error', fail);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
