/**
 * Phase 3, close_clients: what the drain could not close.
 *  - blocked sessions: `CLIENT UNBLOCK <id>` on the backend (Redis), so the client gets the reply it
 *    would get on timeout and the session then closes idle; where unsupported (Pika), closed.
 *  - stragglers (anything else still open but replication links): closed at a reply frame boundary,
 *    optionally spread over `closeSpreadMs` to avoid a reconnect storm on the other pods;
 *  - whatever is left when the budget ends (or at once when forced): destroyed, counted abandoned.
 */
import type { Phase } from '../phase-runner.js';
import { delay } from '../phase-runner.js';
import type { SessionRegistry } from '../../proxy/session-registry.js';
import type { Session } from '../../proxy/session.js';
import type { ControlConnection } from '../../backend/control-connection.js';

export interface CloseClientsDeps {
  budgetMs: number;
  closeSpreadMs: number;
  registry: SessionRegistry;
  /** The control connection: backend client ids and CLIENT UNBLOCK. */
  backend: Pick<ControlConnection, 'clientIdsByPort' | 'unblockClient'>;
}

type Log = { info: (o: object, m: string) => void; warn: (o: object, m: string) => void };

export function closeClientsPhase(d: CloseClientsDeps): Phase {
  const { registry } = d;
  const left = () => registry.clientSessionCount();
  return {
    name: 'close_clients',
    budgetMs: d.budgetMs,
    async run(ctx) {
      const atStart = left();
      if (atStart === 0) return { outcome: 'skipped', detail: { reason: 'no client sessions left' } };
      if (ctx.forced()) {
        registry.destroyClients('destroyed');
        return { detail: { destroyed: atStart } };
      }
      const blocked = registry.inMode('blocked');
      const unblockedSet = blocked.length > 0 ? await unblock(blocked, d.backend, ctx.log) : new Set<Session>();
      const unblocked = unblockedSet.size;
      // Everything else, blocked sessions that could not be unblocked included, closes at a frame boundary.
      const rest = registry.all().filter((s) => s.mode !== 'replication_link' && !unblockedSet.has(s));
      const spread = rest.length > 1 ? d.closeSpreadMs / rest.length : 0;
      for (const s of rest) {
        s.closeAtBoundary('straggler');
        if (spread > 0) await delay(spread, ctx.signal);
        if (ctx.signal.aborted) break;
      }
      try {
        await registry.waitUntil(() => left() === 0, ctx.signal);
        return { detail: { atStart, blocked: blocked.length, unblocked, closedAtBoundary: rest.length } };
      } catch {
        const n = left();
        registry.destroyClients('destroyed');
        ctx.log.warn({ destroyed: n }, `close_clients ran out of time; destroyed ${n} sessions`);
        return { outcome: 'timed_out', detail: { atStart, destroyed: n } };
      }
    },
  };
}

/**
 * Finds each blocked session's backend client id (by its backend-side port) and sends
 * `CLIENT UNBLOCK <id>`. Returns the sessions unblocked; each then closes by itself once its reply
 * is delivered (it is draining). Where the backend cannot do this (Pika), none are.
 */
async function unblock(sessions: Session[], backend: CloseClientsDeps['backend'], log: Log): Promise<Set<Session>> {
  const done = new Set<Session>();
  let ids: Awaited<ReturnType<typeof backend.clientIdsByPort>>;
  try {
    ids = await backend.clientIdsByPort();
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not list backend clients; closing blocked sessions instead');
    return done;
  }
  if (!(ids instanceof Map)) {
    log.info({ reply: ids.message }, 'backend has no usable CLIENT LIST; closing blocked sessions instead');
    return done;
  }
  for (const s of sessions) {
    const id = s.backendLocalPort !== undefined ? ids.get(s.backendLocalPort) : undefined;
    if (id === undefined) continue;
    try {
      const r = await backend.unblockClient(id);
      if (r === true) {
        done.add(s);
        s.labelClose('unblocked'); // it closes by itself once its reply is delivered
      } else if (r !== false) {
        log.info({ reply: r.message }, 'backend does not support CLIENT UNBLOCK; closing blocked sessions instead');
        return done;
      }
    } catch {
      return done;
    }
  }
  log.info({ blocked: sessions.length, unblocked: done.size }, 'unblocked blocked sessions; each closes once its reply is delivered');
  return done;
}
