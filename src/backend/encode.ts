/** The few RESP encoders the sidecar needs (the data path forwards bytes and never encodes). */

/** A command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly string[]): Buffer {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(out);
}

/**
 * What the sidecar itself says to a client: one `-ERR` line. Built in this one place so every
 * message has the same shape; CR/LF in the text would break the frame, so they become spaces.
 */
export function sidecarErrorReply(message: string): Buffer {
  // latin1: a protocol error quotes the client's raw byte ("got '\xff'"); Redis sends it unchanged.
  return Buffer.from(`-ERR ${message.replace(/[\r\n]+/g, ' ')}\r\n`, 'latin1');
}

/**
 * What the backend gets in place of a command the sidecar refused: a command no server knows.
 * It fails exactly where the refused command must: one error reply (silenced by CLIENT REPLY
 * OFF/SKIP like any reply), and inside MULTI a queue-time error, so EXEC answers EXECABORT and
 * runs nothing (Redis: flagTransaction; Pika: SetTxnInitFailState). It never executes anything.
 */
export const REFUSED_STAND_IN: Buffer = encodeCommand(['pika-sidecar-refused']);
