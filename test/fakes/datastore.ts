/**
 * A datastore for tests of the spine (RPC, heartbeats, lifecycle) that need
 * no database: its status is whatever the test sets, prepare records its
 * request, and a call can be made to block until released. Admin, root and
 * configuration are absent, so those methods answer
 * DatastoreOperationNotSupported as for a datastore lacking them.
 */
import type { Datastore, PrepareRequest, ServiceStatus } from '../../src/datastore.ts';

export interface FakeDatastore extends Datastore {
  setStatus(s: ServiceStatus): void;
  prepared: PrepareRequest[];
  restarts: number;
  /** When set, restart() waits for this promise (to test long calls and shutdown). */
  restartGate: Promise<void> | null;
  failPrepareWith: Error | null;
  closed: boolean;
}

export function createFakeDatastore(mountPoint: string): FakeDatastore {
  let status: ServiceStatus = 'shutdown';
  const ds: FakeDatastore = {
    name: 'mysql',
    mountPoint,
    prepared: [],
    restarts: 0,
    restartGate: null,
    failPrepareWith: null,
    closed: false,
    setStatus: (s) => {
      status = s;
    },
    status: { status: async () => status },
    lifecycle: {
      prepare: async (req) => {
        ds.prepared.push(req);
        if (ds.failPrepareWith) throw ds.failPrepareWith;
        status = 'healthy';
      },
      restart: async (ctx) => {
        ds.restarts++;
        if (ds.restartGate) {
          await Promise.race([
            ds.restartGate,
            new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
          ]);
        }
      },
      stop: async () => {
        status = 'shutdown';
      },
      startWithConfChanges: async () => {
        status = 'healthy';
      },
      close: async () => {
        ds.closed = true;
      },
    },
  };
  return ds;
}
