/**
 * Error objects shaped like the SDK's (ServiceException fields, Node errno codes), written by hand.
 */
import { describe, expect, it } from 'vitest';
import { classifyS3Error, type S3Failure } from '../../../src/storage/s3-errors.js';

function sdk(name: string, status?: number, extra: Record<string, unknown> = {}): unknown {
  return Object.assign(new Error(`${name} message`), {
    name,
    $fault: status !== undefined && status >= 500 ? 'server' : 'client',
    $metadata: status === undefined ? {} : { httpStatusCode: status, attempts: 1 },
    ...extra,
  });
}

function net(code: string, name = 'Error'): unknown {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code, name });
}

describe('classifyS3Error', () => {
  it.each<[string, unknown, S3Failure]>([
    ['NoSuchKey', sdk('NoSuchKey', 404), { kind: 'not-found', reason: 'not found', retryable: false }],
    ['HEAD 404', sdk('NotFound', 404), { kind: 'not-found', reason: 'not found', retryable: false }],
    ['bare 404', sdk('UnknownError', 404), { kind: 'not-found', reason: 'not found', retryable: false }],
    ['NoSuchBucket', sdk('NoSuchBucket', 404), { kind: 'no-bucket', reason: 'bucket does not exist (NoSuchBucket)', retryable: false }],
    ['NoSuchUpload', sdk('NoSuchUpload', 404), { kind: 'permanent', reason: 'HTTP 404 NoSuchUpload', retryable: false }],
    ['AccessDenied', sdk('AccessDenied', 403), { kind: 'denied', reason: 'access denied (AccessDenied)', retryable: false }],
    [
      'InvalidAccessKeyId',
      sdk('InvalidAccessKeyId', 403),
      { kind: 'denied', reason: 'access denied (InvalidAccessKeyId)', retryable: false },
    ],
    [
      'SignatureDoesNotMatch',
      sdk('SignatureDoesNotMatch', 403),
      { kind: 'denied', reason: 'access denied (SignatureDoesNotMatch)', retryable: false },
    ],
    ['HEAD 403', sdk('Forbidden', 403), { kind: 'denied', reason: 'access denied (Forbidden)', retryable: false }],
    ['ExpiredToken (400)', sdk('ExpiredToken', 400), { kind: 'denied', reason: 'access denied (ExpiredToken)', retryable: false }],
    ['clock skew', sdk('RequestTimeTooSkewed', 403), { kind: 'transient', reason: 'HTTP 403 RequestTimeTooSkewed', retryable: true }],
    ['412', sdk('PreconditionFailed', 412), { kind: 'exists', reason: 'it already exists (PreconditionFailed)', retryable: false }],
    ['SlowDown', sdk('SlowDown', 503), { kind: 'transient', reason: 'HTTP 503 SlowDown', retryable: true }],
    ['InternalError', sdk('InternalError', 500), { kind: 'transient', reason: 'HTTP 500 InternalError', retryable: true }],
    ['502 without a code', sdk('UnknownError', 502), { kind: 'transient', reason: 'HTTP 502 UnknownError', retryable: true }],
    ['429', sdk('TooManyRequests', 429), { kind: 'transient', reason: 'HTTP 429 TooManyRequests', retryable: true }],
    ['RequestTimeout (400)', sdk('RequestTimeout', 400), { kind: 'transient', reason: 'HTTP 400 RequestTimeout', retryable: true }],
    [
      '$retryable',
      sdk('Weird', 400, { $retryable: { throttling: true } }),
      { kind: 'transient', reason: 'HTTP 400 Weird', retryable: true },
    ],
    ['server fault without status', sdk('Odd', undefined, { $fault: 'server' }), { kind: 'transient', reason: 'Odd', retryable: true }],
    ['InvalidArgument', sdk('InvalidArgument', 400), { kind: 'permanent', reason: 'HTTP 400 InvalidArgument', retryable: false }],
    ['wrong region', sdk('PermanentRedirect', 301), { kind: 'permanent', reason: 'HTTP 301 PermanentRedirect', retryable: false }],
    ['refused', net('ECONNREFUSED'), { kind: 'transient', reason: 'connection refused (ECONNREFUSED)', retryable: true }],
    [
      'reset renamed by the SDK',
      net('ECONNRESET', 'TimeoutError'),
      { kind: 'transient', reason: 'connection reset (ECONNRESET)', retryable: true },
    ],
    ['EPIPE', net('EPIPE', 'TimeoutError'), { kind: 'transient', reason: 'connection closed while sending (EPIPE)', retryable: true }],
    ['request timeout', net('ETIMEDOUT', 'TimeoutError'), { kind: 'transient', reason: 'timed out (ETIMEDOUT)', retryable: true }],
    [
      'socket idle timeout',
      Object.assign(new Error('idle'), { name: 'TimeoutError' }),
      { kind: 'transient', reason: 'timed out (TimeoutError)', retryable: true },
    ],
    ['DNS', net('ENOTFOUND'), { kind: 'transient', reason: 'host not found (ENOTFOUND)', retryable: true }],
    [
      'abort',
      Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }),
      { kind: 'aborted', reason: 'aborted', retryable: false },
    ],
    [
      'no credentials',
      Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      { kind: 'denied', reason: 'no usable credentials (Could not load credentials from any providers)', retryable: false },
    ],
    ['a bug', new TypeError('x is not a function'), { kind: 'permanent', reason: 'x is not a function', retryable: false }],
    ['not an error', 'boom', { kind: 'permanent', reason: 'boom', retryable: false }],
  ])('%s', (_label, err, expected) => {
    expect(classifyS3Error(err)).toEqual(expected);
  });

  it('does not look at message text', () => {
    const err = Object.assign(new Error('SlowDown: 503 ECONNRESET throttled'), {
      name: 'InvalidArgument',
      $metadata: { httpStatusCode: 400 },
    });
    expect(classifyS3Error(err).retryable).toBe(false);
  });
});
