// Pure parts of replication: Trove's rendered configuration as an option file, the snapshot's
// GTID, the source address, and the snapshot/context dicts a replica accepts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReplicationConfig, snapshotGtid } from '../../datastores/mysql/replication.ts';
import { parseReplicaSource, primaryIpv4 } from '../../src/replication.ts';

describe('renderReplicationConfig', () => {
  const trove = '[mysqld]\nlog_bin = /var/lib/mysql/data/mariadb-bin.log\nbinlog_format = MIXED\nlog_slave_updates = ON\nread_only = true\n';
  it('keeps Trove\'s options and moves its data-directory paths to this server\'s', () => {
    expect(renderReplicationConfig(trove, '/var/lib/mysql/data')).toBe(trove);
    expect(renderReplicationConfig(trove, '/srv/state/mariadb/data')).toContain('log_bin = /srv/state/mariadb/data/mariadb-bin.log\n');
  });
  it('refuses includes and lines that are not options', () => {
    expect(() => renderReplicationConfig('[mysqld]\n!include /etc/shadow\n', '/d')).toThrow(/not an option/);
    expect(() => renderReplicationConfig('log_bin = x\n', '/d')).toThrow(/no section/);
    expect(renderReplicationConfig('# c\n[mysqld]\nskip-slave-start\n', '/d')).toBe('[mysqld]\nskip-slave-start\n');
  });
  it('writes the options MySQL 8.3 and later removed (Trove\'s MySQL replica template sets one) as loose_, which a server without them only warns about', () => {
    expect(renderReplicationConfig('[mysqld]\nrelay_log_info_repository = TABLE\nmaster-info-repository = TABLE\nrelay_log_recovery = 1\n', '/d')).toBe(
      '[mysqld]\nloose_relay_log_info_repository = TABLE\nloose_master-info-repository = TABLE\nrelay_log_recovery = 1\n',
    );
  });
});

describe('snapshotGtid', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ga-unit-gtid-'));
  it('reads the GTID mariabackup recorded, empty without one, and refuses anything else', () => {
    writeFileSync(join(dir, 'xtrabackup_binlog_info'), 'mariadb-bin.000002\t1234\t0-1-17,1-2-3\n');
    expect(snapshotGtid(dir)).toBe('0-1-17,1-2-3');
    writeFileSync(join(dir, 'xtrabackup_binlog_info'), 'mariadb-bin.000002\t1234\n');
    expect(snapshotGtid(dir)).toBe('');
    writeFileSync(join(dir, 'xtrabackup_binlog_info'), "f\t1\t0-1-1'; DROP TABLE x\n");
    expect(() => snapshotGtid(dir)).toThrow(/unexpected GTID/);
    rmSync(dir, { recursive: true });
    expect(() => snapshotGtid(dir)).toThrow(/Unable to determine the last GTID/);
  });
});

describe('primaryIpv4', () => {
  const routes = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n' +
    'eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\neth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n';
  const nic = (address: string, internal = false) => [{ address, family: 'IPv4' as const, internal, netmask: '', mac: '', cidr: null }];
  it('is the address of the default route\'s interface, else any external one, else loopback', () => {
    expect(primaryIpv4(routes, { lo: nic('127.0.0.1', true), eth1: nic('192.168.0.5'), eth0: nic('10.0.0.7') } as never)).toBe('10.0.0.7');
    expect(primaryIpv4('', { lo: nic('127.0.0.1', true), eth1: nic('192.168.0.5') } as never)).toBe('192.168.0.5');
    expect(primaryIpv4('', { lo: nic('127.0.0.1', true) } as never)).toBe('127.0.0.1');
  });
});

describe('parseReplicaSource', () => {
  const ctx = { master: { host: '10.0.0.7', port: 3306 }, replica_conf: { log_position: {}, replication_user: { name: 'slave_1a2b3c4d', password: 'p' } } };
  it('reads a replica context, and a snapshot as restored from its backup', () => {
    expect(parseReplicaSource(ctx)).toEqual({ master: { host: '10.0.0.7', port: 3306 }, replicationUser: { name: 'slave_1a2b3c4d', password: 'p' }, fromSnapshot: false });
    expect(parseReplicaSource({ ...ctx, dataset: { snapshot_id: 'x' } }).fromSnapshot).toBe(true);
  });
  it('refuses a dict without a usable source', () => {
    expect(() => parseReplicaSource({ ...ctx, master: { host: 'h', port: 'x' } })).toThrow(/not a port/);
    expect(() => parseReplicaSource({ ...ctx, replica_conf: {} })).toThrow(/replication_user/);
    expect(() => parseReplicaSource(null)).toThrow(/must be a dict/);
  });
});

describe('PostgreSQL primary_conninfo', () => {
  it('quotes every value and refuses a host that is not a name or address', async () => {
    const { conninfo } = await import('../../datastores/postgresql/replication.ts');
    expect(conninfo('10.0.0.7', 5432, 'replicator', "p'w\\x")).toBe("host='10.0.0.7' port='5432' dbname=postgres user='replicator' password='p\\'w\\\\x' application_name='guestagent'");
    expect(conninfo('db.example', 5432, 'replicator', null)).not.toContain('password');
    expect(() => conninfo("h' sslmode='disable", 1, 'u', 'p')).toThrow(/not a host name/);
  });
});
