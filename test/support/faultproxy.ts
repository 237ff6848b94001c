/**
 * A fault-injecting HTTP proxy on 127.0.0.1 for storage tests. It forwards every request unchanged
 * (Host header included, so SigV4 signatures stay valid) to one target, except the requests that a
 * queued fault matches. Faults are consumed in the order they were queued, one request each, so a
 * test decides exactly which attempt fails and how:
 *
 *   status  answer without forwarding, with an S3-style XML error body (500 InternalError, 503 SlowDown, ...)
 *   delay   forward, then hold the response back for `ms` (request timeouts)
 *   reset   'request': kill the connection (TCP RST) before forwarding anything;
 *           'response': forward, then kill it mid-response (after the headers and half the body,
 *           or before any byte when the body is empty: the server acted, the client never hears)
 *
 * `refuse(true)` resets every connection (existing and new) until `refuse(false)` or `clear()`.
 * Every request is recorded in `requests` with the fault it received, for assertions.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  { kind: 'status'; status: number; code?: string } | { kind: 'delay'; ms: number } | { kind: 'reset'; when: 'request' | 'response' };

export interface FaultMatch {
  method?: string;
  /** Tested against the request's path and query string. */
  path?: RegExp;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The fault applied to this request, if any ('refused' for refuse mode). */
  fault?: string;
}

interface QueuedFault {
  fault: Fault;
  match: FaultMatch;
  remaining: number;
}

const DEFAULT_CODES: Record<number, string> = {
  400: 'BadRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  412: 'PreconditionFailed',
  429: 'SlowDown',
  500: 'InternalError',
  502: 'BadGateway',
  503: 'SlowDown',
  504: 'GatewayTimeout',
};

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'expect', 'upgrade'];

function strip(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...headers };
  for (const h of HOP_BY_HOP) delete out[h];
  return out;
}

function describe(fault: Fault): string {
  switch (fault.kind) {
    case 'status':
      return `status ${fault.status}`;
    case 'delay':
      return `delay ${fault.ms}`;
    case 'reset':
      return `reset ${fault.when}`;
  }
}

function kill(socket: Socket): void {
  // A real RST, as a crashed peer or a middlebox would send, not an orderly FIN.
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

export class FaultProxy {
  readonly requests: SeenRequest[] = [];
  private readonly queue: QueuedFault[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly agent = new http.Agent({ keepAlive: true });
  private refusing = false;
  private port = 0;

  private constructor(
    private readonly server: http.Server,
    private readonly target: URL,
  ) {}

  /** Starts a proxy for `target` (e.g. s3rver's endpoint) on a free loopback port. */
  static async start(target: string): Promise<FaultProxy> {
    const server = http.createServer();
    const proxy = new FaultProxy(server, new URL(target));
    server.on('connection', (socket) => proxy.onConnection(socket));
    server.on('request', (req, res) => proxy.onRequest(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (server.address() as AddressInfo).port;
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Queues a fault for the next `times` requests that match (all requests by default). */
  inject(fault: Fault, opts: { times?: number; match?: FaultMatch } = {}): void {
    this.queue.push({ fault, match: opts.match ?? {}, remaining: opts.times ?? 1 });
  }

  refuse(on = true): void {
    this.refusing = on;
    if (on) for (const socket of this.sockets) kill(socket);
  }

  /** Drops queued faults, stops refusing and forgets recorded requests. */
  clear(): void {
    this.queue.length = 0;
    this.refusing = false;
    this.requests.length = 0;
  }

  /** Faults still queued (a test can assert all were used). */
  get pendingFaults(): number {
    return this.queue.reduce((n, q) => n + q.remaining, 0);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    if (this.refusing) {
      this.requests.push({ method: '', url: '', headers: {}, fault: 'refused' });
      kill(socket);
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }

  private take(req: IncomingMessage): Fault | undefined {
    const url = req.url ?? '';
    const i = this.queue.findIndex((q) => (!q.match.method || q.match.method === req.method) && (!q.match.path || q.match.path.test(url)));
    if (i === -1) return undefined;
    const queued = this.queue[i]!;
    if (--queued.remaining <= 0) this.queue.splice(i, 1);
    return queued.fault;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const fault = this.take(req);
    this.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      ...(fault ? { fault: describe(fault) } : {}),
    });
    if (fault?.kind === 'reset' && fault.when === 'request') {
      kill(req.socket);
      return;
    }
    if (fault?.kind === 'status') {
      this.answer(req, res, fault.status, fault.code ?? DEFAULT_CODES[fault.status] ?? 'InternalError');
      return;
    }
    this.forward(req, res, fault);
  }

  private answer(req: IncomingMessage, res: ServerResponse, status: number, code: string): void {
    // Read the whole request first, as a server does, so the client is not cut off mid-upload.
    req.resume();
    req.once('end', () => {
      const body =
        req.method === 'HEAD'
          ? ''
          : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
            `<Message>injected by the fault proxy</Message><RequestId>faultproxy</RequestId></Error>`;
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    const upstream = http.request(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: strip(req.headers),
        agent: this.agent,
      },
      (up) => {
        const send = (): void => {
          if (fault?.kind === 'reset' && fault.when === 'response') {
            this.resetMidResponse(req, res, up);
            return;
          }
          res.writeHead(up.statusCode ?? 502, strip(up.headers));
          up.pipe(res);
        };
        if (fault?.kind === 'delay') setTimeout(send, fault.ms);
        else send();
      },
    );
    upstream.on('error', () => kill(req.socket));
    req.pipe(upstream);
  }

  private resetMidResponse(req: IncomingMessage, res: ServerResponse, up: IncomingMessage): void {
    const chunks: Buffer[] = [];
    up.on('data', (c: Buffer) => chunks.push(c));
    up.once('end', () => {
      const body = Buffer.concat(chunks);
      if (body.length === 0) {
        kill(req.socket);
        return;
      }
      res.writeHead(up.statusCode ?? 502, { ...strip(up.headers), 'content-length': body.length });
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => kill(req.socket));
    });
  }
}
