/**
 * Protocol errors raised by the scanners. Request-side texts are Redis 7's own words (networking.c),
 * without the '-ERR ' prefix, so a client of the sidecar sees what it would see from the backend.
 */
import { SidecarError } from '../errors.js';

export const MSG_TOO_BIG_MBULK_COUNT = 'Protocol error: too big mbulk count string';
export const MSG_TOO_BIG_BULK_COUNT = 'Protocol error: too big bulk count string';
export const MSG_INVALID_MULTIBULK_LENGTH = 'Protocol error: invalid multibulk length';
export const MSG_INVALID_BULK_LENGTH = 'Protocol error: invalid bulk length';
export const MSG_TOO_BIG_INLINE_REQUEST = 'Protocol error: too big inline request';
export const MSG_UNBALANCED_QUOTES = 'Protocol error: unbalanced quotes in request';

export function protocolError(message: string): SidecarError {
  return new SidecarError('ERR_PROTOCOL', message);
}

/**
 * "expected '$', got 'X'" with X the raw byte, as Redis prints it with %c. Redis replaces CR and LF
 * in error texts with spaces, and so do we. Encode the message as latin1 to send X byte for byte.
 */
export function expectedDollarError(byte: number): SidecarError {
  const shown = byte === 0x0d || byte === 0x0a ? ' ' : String.fromCharCode(byte);
  return protocolError(`Protocol error: expected '$', got '${shown}'`);
}
