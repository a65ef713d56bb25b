/**
 * The static registry of datastores: manager name → factory. Imported only by
 * src/main.ts. `satisfies Record<DatastoreName, …>` makes adding a datastore
 * name fail the compile until it has an entry here.
 */
import type { DatastoreFactory, DatastoreName } from '../src/datastore.ts';
import { createMariadbDatastore } from './mariadb/index.ts';
import { createMysqlDatastore } from './mysql/index.ts';
import { createPostgresDatastore } from './postgresql/index.ts';
import { createRedisDatastore } from './redis/index.ts';

/** A factory, or null while that datastore is not part of this build. */
export const DATASTORES: Readonly<Record<DatastoreName, DatastoreFactory | null>> = {
  mysql: createMysqlDatastore,
  mariadb: createMariadbDatastore,
  postgresql: createPostgresDatastore,
  redis: createRedisDatastore,
} as const satisfies Record<DatastoreName, DatastoreFactory | null>;

export function isDatastoreName(s: string): s is DatastoreName {
  return Object.hasOwn(DATASTORES, s);
}
