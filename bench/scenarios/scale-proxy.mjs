// A loopback HTTP proxy in front of s3rver that counts the requests each operation sends, by kind
// (LIST = ListObjectsV2, GET, HEAD, PUT, POST, DELETE), so the scale scenario can report storage
// requests per operation without touching walvault's S3 driver.
import { createServer, request } from 'node:http';

function kindOf(req) {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.searchParams.has('list-type')) return 'LIST';
  return req.method;
}

export async function startCountingProxy(target) {
  const upstream = new URL(target);
  let counts = {};
  const server = createServer((req, res) => {
    const kind = kindOf(req);
    counts[kind] = (counts[kind] ?? 0) + 1;
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => {
      res.destroy();
    });
    req.pipe(out);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    /** Counts since the last reset, then starts counting afresh. */
    take() {
      const c = counts;
      counts = {};
      return c;
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
