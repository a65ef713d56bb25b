// The MySQL datastore's whole life against Debian's MariaDB (the agent's default server).
import { defineLifecycleSuite } from './lifecycle.suite.ts';

defineLifecycleSuite({ flavor: 'mariadb', binary: '/usr/sbin/mariadbd', dsVersion: '10.11', extraConf: '' });
