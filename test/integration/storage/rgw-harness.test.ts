/**
 * The RGW harness itself (test/support/rgw.ts): the promise other tests build on is a real
 * conditional write (a second If-None-Match: * PUT gets 412 from the server, not from our driver),
 * an outage that keeps the objects, and a stop() that leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRgw, type RgwHandle } from '../../support/rgw.js';
import { s3Servers } from '../../support/s3servers.js';

const rgwKind = s3Servers().find((s) => s.name === 'rgw');

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe.skipIf(!rgwKind || rgwKind.skip !== undefined)('the Ceph RGW test harness', () => {
  let rgw: RgwHandle;
  let client: S3Client;

  beforeAll(async () => {
    rgw = await startRgw({ bucket: 'harness' });
    client = new S3Client({
      endpoint: rgw.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    client?.destroy();
    await rgw?.stop();
  });

  it('answers a second If-None-Match: * PUT with 412 and keeps the first body', async () => {
    const put = (body: string) => client.send(new PutObjectCommand({ Bucket: 'harness', Key: 'once', Body: body, IfNoneMatch: '*' }));
    await put('first');
    const err = await put('second').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(S3ServiceException);
    expect((err as S3ServiceException).$metadata.httpStatusCode).toBe(412);
    const got = await client.send(new GetObjectCommand({ Bucket: 'harness', Key: 'once' }));
    expect(await got.Body!.transformToString()).toBe('first');
  });

  it('creates further buckets, twice without complaint', async () => {
    await rgw.createBucket('harness-two');
    await rgw.createBucket('harness-two');
    await client.send(new PutObjectCommand({ Bucket: 'harness-two', Key: 'k', Body: 'v' }));
  });

  it('keeps the objects across suspend and resume', async () => {
    await rgw.suspend();
    expect(await refused(rgw.port)).toBe(true);
    await rgw.resume();
    const got = await client.send(new GetObjectCommand({ Bucket: 'harness', Key: 'once' }));
    expect(await got.Body!.transformToString()).toBe('first');
  });

  it('stop() closes the port and removes the directory, and may be called twice', async () => {
    expect(existsSync(rgw.directory)).toBe(true);
    await rgw.stop();
    await rgw.stop();
    expect(await refused(rgw.port)).toBe(true);
    expect(existsSync(rgw.directory)).toBe(false);
  });
});
