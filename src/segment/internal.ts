/** Helpers shared by the page-header and inspection modules; not part of the public API. */
import { InvalidWalError } from '../common/errors.js';

export function isAllZero(bytes: Uint8Array, from = 0, to = bytes.length): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** `unable to <verb> WAL file '<label>': <reason>`, or without the name when there is none. */
export function walMessage(verb: string, label: string | undefined, reason: string): string {
  return label === undefined ? `unable to ${verb} WAL: ${reason}` : `unable to ${verb} WAL file '${label}': ${reason}`;
}

export function walError(verb: string, label: string | undefined, reason: string): InvalidWalError {
  return new InvalidWalError(walMessage(verb, label, reason));
}

export function hex16(value: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(4, '0')}`;
}
