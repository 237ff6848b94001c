// Child-process entry for test/support/s3server.ts: runs s3rver on 127.0.0.1 and prints
// {"port": n} on stdout once it listens. Started with `node --openssl-legacy-provider`, because
// s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 refuses otherwise; keeping it
// in its own process leaves the test process's crypto untouched.
//
// Usage: node --openssl-legacy-provider s3rver-main.mjs <directory> <port|0> <bucket>
// Exits when stdin closes (the test process went away) or on SIGTERM.
import S3rver from 's3rver';

const [directory, portArg, bucket] = process.argv.slice(2);
if (!directory || portArg === undefined || !bucket) {
  process.stderr.write('usage: s3rver-main.mjs <directory> <port> <bucket>\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portArg),
  directory,
  silent: true,
  configureBuckets: [{ name: bucket }],
});

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  // Keep-alive sockets from SDK clients would hold close() open.
  server.httpServer?.closeAllConnections?.();
  await server.close().catch(() => undefined);
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
