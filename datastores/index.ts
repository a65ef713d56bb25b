/**
 * The static registry of datastores: manager name → factory. Imported only by
 * src/main.ts. `satisfies Record<DatastoreName, …>` makes adding a datastore
 * name fail the compile until it has an entry here.
 */
import type { DatastoreFactory, DatastoreName } from '../src/datastore.ts';

/**
 * A loader of the factory, or null while that datastore is not part of this
 * build. Loaded on demand: a guest runs one datastore, and its drivers are
 * what weighs (mysql2 ~23 MiB of RSS, pg ~10 MiB); the others stay unloaded.
 */
export const DATASTORES: Readonly<Record<DatastoreName, (() => Promise<DatastoreFactory>) | null>> = {
  mysql: async () => (await import('./mysql/index.ts')).createMysqlDatastore,
  mariadb: async () => (await import('./mariadb/index.ts')).createMariadbDatastore,
  postgresql: async () => (await import('./postgresql/index.ts')).createPostgresDatastore,
  redis: async () => (await import('./redis/index.ts')).createRedisDatastore,
} as const satisfies Record<DatastoreName, (() => Promise<DatastoreFactory>) | null>;

export function isDatastoreName(s: string): s is DatastoreName {
  return Object.hasOwn(DATASTORES, s);
}
