/**
 * Classifies what the AWS SDK (or the socket under it) threw, by the structured fields the SDK sets
 * (`$metadata.httpStatusCode`, `$retryable`, `$fault`, `name`) and Node's errno `code`, never by
 * message text. Pure; the S3 driver turns the result into our errors.
 */
import { describeCause } from '../common/errors.js';
import { isTransientNetworkCode } from '../common/retry.js';

export type S3FailureKind = 'not-found' | 'exists' | 'aborted' | 'denied' | 'no-bucket' | 'transient' | 'permanent';

export interface S3Failure {
  kind: S3FailureKind;
  /** Short reason for the end of an error message, e.g. "access denied (InvalidAccessKeyId)". */
  reason: string;
  retryable: boolean;
}

interface SdkErrorFields {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);
const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidSecurity',
]);
/** S3 error codes that mean "try again" even when the status alone would not say so. */
const TRANSIENT = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  // The signer corrects its clock offset from the failed response, so the next attempt is signed right.
  'RequestTimeTooSkewed',
  // Real S3, when a conditional write races another one in flight: retry advised.
  'ConditionalRequestConflict',
]);

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  ETIMEDOUT: 'timed out',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
};

export function classifyS3Error(err: unknown): S3Failure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorFields;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const code = typeof e.code === 'string' ? e.code : undefined;
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const http = (label: string): string => (status !== undefined ? `HTTP ${status} ${label}` : label);

  if (name === 'AbortError') return { kind: 'aborted', reason: 'aborted', retryable: false };
  if (name === 'NoSuchBucket') return { kind: 'no-bucket', reason: 'bucket does not exist (NoSuchBucket)', retryable: false };
  if (NOT_FOUND.has(name) || (status === 404 && name !== 'NoSuchUpload')) {
    return { kind: 'not-found', reason: 'not found', retryable: false };
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return { kind: 'exists', reason: `it already exists (${name})`, retryable: false };
  }
  if (TRANSIENT.has(name)) return { kind: 'transient', reason: http(name), retryable: true };
  if (DENIED.has(name) || status === 403) return { kind: 'denied', reason: `access denied (${name})`, retryable: false };
  if (name === 'CredentialsProviderError') {
    return { kind: 'denied', reason: `no usable credentials (${describeCause(err)})`, retryable: false };
  }
  if (e.$retryable || status === 429 || (status !== undefined && status >= 500) || e.$fault === 'server') {
    return { kind: 'transient', reason: http(name), retryable: true };
  }
  // Before the name: the SDK's HTTP handler renames ECONNRESET and EPIPE errors to TimeoutError.
  if (code !== undefined && isTransientNetworkCode(code)) {
    return { kind: 'transient', reason: `${NETWORK_REASONS[code] ?? 'network error'} (${code})`, retryable: true };
  }
  if (name === 'TimeoutError') return { kind: 'transient', reason: 'timed out (TimeoutError)', retryable: true };
  if (status !== undefined) return { kind: 'permanent', reason: http(name), retryable: false };
  return { kind: 'permanent', reason: describeCause(err), retryable: false };
}
