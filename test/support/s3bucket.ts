/**
 * What every S3 server the tests start offers (s3rver in s3server.ts, Ceph RGW in rgw.ts), so a
 * test can run against any of them, and the one helper they share: creating a bucket.
 */
import { BucketAlreadyOwnedByYou, CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface S3TestServer {
  readonly kind: 's3rver' | 'rgw';
  /** http://127.0.0.1:port; use path-style addressing and region us-east-1. */
  readonly endpoint: string;
  readonly port: number;
  /** Created at start. */
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The server's own temp directory (removed by stop()). */
  readonly directory: string;
  /** Creates another bucket; succeeds if this user already owns it. */
  createBucket(name: string): Promise<void>;
  /** Kills the S3 server at once (an outage); the port and the objects are kept for resume(). */
  suspend(): Promise<void>;
  /** Starts it again on the same port with the same objects. */
  resume(): Promise<void>;
  /** Final: stops every process and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

export async function createBucket(
  server: { endpoint: string; accessKeyId: string; secretAccessKey: string },
  name: string,
): Promise<void> {
  const client = new S3Client({
    endpoint: server.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    maxAttempts: 1,
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    if (!(err instanceof BucketAlreadyOwnedByYou)) throw err;
  } finally {
    client.destroy();
  }
}
