/** MariaDB: the MySQL datastore's parts under the mariadb manager name (backups will differ: mariabackup). */
import type { Datastore, DatastoreOptions } from '../../src/datastore.ts';
import { createMysql } from '../mysql/index.ts';

export const createMariadbDatastore = (opts: DatastoreOptions): Datastore => createMysql(opts, 'mariadb');
