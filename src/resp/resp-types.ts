/**
 * RESP type bytes and the scanners' shared "no event in these bytes" result, in one place (the
 * style of node-redis' RESP_TYPES): both scanners and the session name bytes, not numbers.
 */

/** Returned by the scanners' next(): every byte was consumed into state without an event. */
export const NEED_MORE = -1;

export const RESP_TYPES = {
  SIMPLE_STRING: 0x2b, // +
  ERROR: 0x2d, // -
  INTEGER: 0x3a, // :
  NULL: 0x5f, // _
  DOUBLE: 0x2c, // ,
  BOOLEAN: 0x23, // #
  BIG_NUMBER: 0x28, // (
  BLOB_STRING: 0x24, // $
  BLOB_ERROR: 0x21, // !
  VERBATIM_STRING: 0x3d, // =
  ARRAY: 0x2a, // *
  SET: 0x7e, // ~
  PUSH: 0x3e, // >
  MAP: 0x25, // %
  ATTRIBUTE: 0x7c, // |
} as const;

export const CR = 0x0d;
export const LF = 0x0a;
