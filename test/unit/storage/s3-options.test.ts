/** S3 driver construction: option checks and what it shows in messages. No network. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/common/errors.js';
import { S3Storage, type S3StorageOptions } from '../../../src/storage/s3.js';

const base: S3StorageOptions = { bucket: 'bucket', region: 'us-east-1', credentials: { accessKeyId: 'AKID', secretAccessKey: 'SECRET' } };

/** Takes explicit undefineds too, as a JavaScript caller could pass them (the cast says so). */
function make(overrides: { [K in keyof S3StorageOptions]?: S3StorageOptions[K] | undefined }): S3Storage {
  return new S3Storage({ ...base, ...overrides } as S3StorageOptions);
}

describe('S3Storage options', () => {
  it.each([
    [{ prefix: undefined }, '', 's3://bucket/'],
    [{ prefix: 'prod/db1' }, 'prod/db1/', 's3://bucket/prod/db1'],
    [{ prefix: '/prod/db1/' }, 'prod/db1/', 's3://bucket/prod/db1'],
    [{ prefix: 'p', endpoint: 'http://127.0.0.1:9000' }, 'p/', 's3://bucket/p at http://127.0.0.1:9000'],
    [{ prefix: 'p', endpoint: 'https://key:secret@minio.local/' }, 'p/', 's3://bucket/p at https://minio.local'],
  ])('%j', async (overrides, root, description) => {
    const s = make(overrides);
    expect(s.root).toBe(root);
    expect(s.description).toBe(description);
    expect(s.description).not.toContain('secret');
    await s.close();
  });

  it.each([
    [{ bucket: '' }, /not a bucket name/],
    [{ bucket: 'a/b' }, /not a bucket name/],
    [{ prefix: 'a//b' }, /unable to use S3 prefix 'a\/\/b': empty path segment/],
    [{ prefix: 'a/../b' }, /'\.\.' segment/],
    [{ endpoint: 'not a url' }, /not a URL/],
    [{ endpoint: 'ftp://127.0.0.1' }, /must be http/],
    [{ partSize: 1024 }, /partSize.*>= 5242880/],
    [{ partConcurrency: 0 }, /partConcurrency/],
    [{ listPageSize: 5000 }, /at most 1000/],
    [{ maxAttempts: 0 }, /maxAttempts must be an integer >= 1/],
    [{ requestTimeoutMs: -5 }, /requestTimeoutMs/],
    [{ checksums: 'sometimes' as 'default' }, /checksums/],
    [{ sse: 'DES' as 'AES256' }, /sse/],
    [{ kmsKeyId: 'key-1' }, /needs sse = aws:kms/],
    [{ sse: 'AES256' as const, kmsKeyId: 'key-1' }, /needs sse = aws:kms/],
  ])('rejects %j', (overrides, message) => {
    expect(() => make(overrides)).toThrow(ConfigError);
    expect(() => make(overrides)).toThrow(message);
  });

  it('accepts SSE-KMS with a key id, a storage class and bigger parts', async () => {
    const s = make({ sse: 'aws:kms', kmsKeyId: 'arn:aws:kms:eu-west-1:1:key/x', storageClass: 'STANDARD_IA', partSize: 64 * 1024 * 1024 });
    expect(s.kind).toBe('s3');
    await s.close();
  });
});
