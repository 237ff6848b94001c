import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../src/common/errors.js';
import { createStorage, parseStorageUrl } from '../../../src/storage/factory.js';

// Records whether anything imported the AWS SDK: the factory must load it only for s3:// URLs.
const sdk = vi.hoisted(() => ({ loads: 0 }));
vi.mock('@aws-sdk/client-s3', async (importOriginal) => {
  sdk.loads++;
  return importOriginal();
});

describe('parseStorageUrl', () => {
  it.each([
    ['file:///var/lib/walvault', { kind: 'posix', root: '/var/lib/walvault' }],
    ['file:///var/lib/walvault/', { kind: 'posix', root: '/var/lib/walvault' }],
    ['file:///srv/wal%20archive', { kind: 'posix', root: '/srv/wal archive' }],
    ['file://localhost/srv/wal', { kind: 'posix', root: '/srv/wal' }],
    ['file:///a/b/../c', { kind: 'posix', root: '/a/c' }],
    ['/var/lib/walvault', { kind: 'posix', root: '/var/lib/walvault' }],
    ['/var/lib/walvault//', { kind: 'posix', root: '/var/lib/walvault' }],
    ['s3://bucket', { kind: 's3', bucket: 'bucket', prefix: '' }],
    ['s3://bucket/', { kind: 's3', bucket: 'bucket', prefix: '' }],
    ['s3://my-bucket/prod/db1', { kind: 's3', bucket: 'my-bucket', prefix: 'prod/db1' }],
    ['s3://my.bucket/prod/db1/', { kind: 's3', bucket: 'my.bucket', prefix: 'prod/db1' }],
    ['S3://bucket/p', { kind: 's3', bucket: 'bucket', prefix: 'p' }],
  ])('%s', (url, expected) => {
    expect(parseStorageUrl(url)).toEqual(expected);
  });

  it.each([
    ['', /empty/],
    ['archive', /relative paths are not allowed/],
    ['./archive', /relative paths are not allowed/],
    ['../wal', /relative paths are not allowed/],
    [' /var/wal', /spaces/],
    ['file://server/share/wal', /not a local file URL/],
    ['file:relative', /file:\/\/\/absolute/],
    ['file://', /file system root is not an archive directory/],
    ['file:///', /file system root is not an archive directory/],
    ['file:///./', /file system root is not an archive directory/],
    ['file://localhost/', /file system root is not an archive directory/],
    ['/', /file system root is not an archive directory/],
    ['//', /file system root is not an archive directory/],
    ['/var/..', /file system root is not an archive directory/],
    ['s3://', /not a bucket name/],
    ['s3:///prefix', /not a bucket name/],
    ['s3://bucket//double', /not a usable prefix/],
    ['s3://bucket/a/../b', /not a usable prefix/],
    ['s3://bucket/.hidden', /not a usable prefix/],
    ['s3://bucket/p?region=eu-west-1', /query strings/],
    ['gs://bucket/p', /unsupported scheme 'gs:'/],
    ['https://s3.amazonaws.com/bucket', /unsupported scheme 'https:'/],
  ])('rejects %j', (url, message) => {
    expect(() => parseStorageUrl(url)).toThrow(ConfigError);
    expect(() => parseStorageUrl(url)).toThrow(message);
  });
});

describe('createStorage', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'walvault-factory-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('builds a posix storage without loading the AWS SDK', async () => {
    const s = await createStorage(`file://${dir}`);
    expect(s.kind).toBe('posix');
    expect(s.description).toBe(`file://${dir}`);
    await s.put('k', Buffer.from('v'));
    expect((await s.getBuffer('k')).toString()).toBe('v');
    await s.close();
    expect(sdk.loads).toBe(0);
  });

  it('loads the SDK for s3:// and passes the options through', async () => {
    const s = await createStorage('s3://bucket/prod/db1', {
      endpoint: 'http://user:secret@127.0.0.1:9000/',
      forcePathStyle: true,
      region: 'eu-west-1',
      checksums: 'when_required',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-in-descriptions' },
    });
    expect(sdk.loads).toBe(1);
    expect(s.kind).toBe('s3');
    expect(s.description).toBe('s3://bucket/prod/db1 at http://127.0.0.1:9000');
    await s.close();
  });
});
