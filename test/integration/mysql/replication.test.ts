// Trove's MariaDBGTIDReplication against Debian's MariaDB (mariabackup snapshots).
import { defineReplicationSuite } from './replication.suite.ts';

defineReplicationSuite({ manager: 'mariadb', dsVersion: '10.11', extraConf: '' });
