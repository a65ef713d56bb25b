import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.ts';
import { loadConfig, type LoadOptions } from '../../../src/config/load.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cfg-test-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

function errorOf(opts: LoadOptions): ConfigError {
  try {
    loadConfig(opts);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const GUEST = '[DEFAULT]\nguest_id = g-1\n';
const FIXTURES = join(import.meta.dirname, '../../fixtures/config');

describe('loadConfig', () => {
  it('applies Trove 18 defaults', () => {
    const c = loadConfig({ configFiles: [write('g.conf', GUEST)] });
    expect(c.guestId).toBe('g-1');
    expect(c.reportIntervalSec).toBe(30);
    expect(c.controlExchange).toBe('openstack'); // oslo default; Trove 18 never calls set_transport_defaults
    expect(c.conductorQueue).toBe('trove-conductor');
    expect(c.stateChangeWaitTimeSec).toBe(180);
    expect(c.agentCallLowTimeoutSec).toBe(15);
    expect(c.agentCallHighTimeoutSec).toBe(180);
    expect(c.usageTimeoutSec).toBe(1800);
    expect(c.backup).toMatchObject({
      swiftContainer: 'database_backups',
      segmentMaxSize: 2147483648,
      chunkSize: 65536,
      encryptionKey: null,
      retries: 1,
      useGzip: true,
      useOpensslEncryption: true,
      storageStrategy: 'swift',
    });
    expect(c.rabbit).toMatchObject({
      heartbeatTimeoutThresholdSec: 60,
      kombuReconnectDelayMs: 1000,
      retryIntervalMs: 1000,
      retryBackoffMs: 2000,
      intervalMaxMs: 30000,
      transientQueuesTtlSec: 1800,
      directMandatoryFlag: true,
      ssl: null,
    });
    const ds = c.datastoreSections;
    expect(ds.mysql['mount_point']).toBe('/var/lib/mysql');
    expect(ds.mysql['ignore_users']).toEqual(['os_admin', 'root']);
    expect(ds.mysql['backup_strategy']).toBe('innobackupex');
    expect(ds.mysql['device_path']).toBe('/dev/vdb');
    expect(ds.mariadb['mount_point']).toBe('/var/lib/mysql');
    expect(ds.postgresql['mount_point']).toBe('/var/lib/postgresql');
    expect(ds.postgresql['ignore_users']).toEqual(['os_admin', 'postgres']);
    expect(ds.redis['mount_point']).toBe('/var/lib/redis');
    expect(c.transportUrl.hosts).toEqual([{ host: 'localhost', port: 5672, username: 'guest', password: 'guest' }]);
    expect(c.debug).toBe(false);
    expect(c.logLevel).toBe('info');
  });

  it('returns a deeply frozen object', () => {
    const c = loadConfig({ configFiles: [write('g.conf', GUEST)] });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.rabbit)).toBe(true);
    expect(Object.isFrozen(c.datastoreSections.mysql['ignore_users'])).toBe(true);
  });

  it('lets the later file win, and the last occurrence inside a file', () => {
    const a = write('a.conf', GUEST + 'report_interval = 10\n[mysql]\nmount_point = /a\n');
    const b = write('b.conf', '[DEFAULT]\nreport_interval = 20\nreport_interval = 25\n');
    const c = loadConfig({ configFiles: [a, b] });
    expect(c.reportIntervalSec).toBe(25);
    expect(c.datastoreSections.mysql['mount_point']).toBe('/a');
    expect(c.files).toEqual([a, b]);
    expect(loadConfig({ configFiles: [b, a] }).reportIntervalSec).toBe(10);
  });

  it('reads a config dir in sorted order, in command-line position', () => {
    const f = write('main.conf', GUEST + 'report_interval = 1\n');
    write('d/20-b.conf', '[DEFAULT]\nreport_interval = 3\n');
    write('d/10-a.conf', '[DEFAULT]\nreport_interval = 2\nusage_timeout = 7\n');
    write('d/30-ignored.txt', '[DEFAULT]\nreport_interval = 99\n');
    const d = join(dir, 'd');
    const c = loadConfig({ configFiles: [f], configDirs: [d] });
    expect(c.reportIntervalSec).toBe(3);
    expect(c.usageTimeoutSec).toBe(7);
    expect(c.files).toEqual([f, join(d, '10-a.conf'), join(d, '20-b.conf')]);
    // A --config-file given after --config-dir wins over the dir.
    const later = loadConfig({ sources: [{ kind: 'dir', path: d }, { kind: 'file', path: f }] });
    expect(later.reportIntervalSec).toBe(1);
  });

  it('lets OS_<GROUP>__<OPTION> override every file', () => {
    const f = write('g.conf', GUEST + 'report_interval = 10\n[mysql]\nmount_point = /a\n');
    const c = loadConfig({
      configFiles: [f],
      env: { OS_DEFAULT__REPORT_INTERVAL: '45', OS_MYSQL__MOUNT_POINT: '/env', OS_DEFAULT__GUEST_ID: undefined },
    });
    expect(c.reportIntervalSec).toBe(45);
    expect(c.datastoreSections.mysql['mount_point']).toBe('/env');
    expect(c.guestId).toBe('g-1');
    const e = errorOf({ configFiles: [f], env: { OS_DEFAULT__DEBUG: 'maybe' } });
    expect(e.message).toBe('environment variable OS_DEFAULT__DEBUG: [DEFAULT] debug: invalid boolean "maybe"');
  });

  it('honours oslo deprecated names (mysql ignore_users from [DEFAULT])', () => {
    const c = loadConfig({ configFiles: [write('g.conf', GUEST + 'ignore_users = os_admin\n')] });
    expect(c.datastoreSections.mysql['ignore_users']).toEqual(['os_admin']);
  });

  it('types values: bool, int, float, list, section case', () => {
    const f = write(
      'g.conf',
      GUEST +
        'debug = YES\n' +
        '[oslo_messaging_rabbit]\nkombu_reconnect_delay = 2.5\nssl = on\nssl_ca_file = /ca.pem\n' +
        '[MYSQL]\nvolume_support = off\nignore_dbs = a, b,\n',
    );
    const c = loadConfig({ configFiles: [f] });
    expect(c.debug).toBe(true);
    expect(c.logLevel).toBe('debug');
    expect(c.rabbit.kombuReconnectDelayMs).toBe(2500);
    expect(c.rabbit.ssl).toEqual({ caFile: '/ca.pem', certFile: null, keyFile: null, version: null, enforceHostnameVerification: false });
    expect(c.transportUrl.ssl).toBe(true);
    expect(c.datastoreSections.mysql['volume_support']).toBe(false);
    expect(c.datastoreSections.mysql['ignore_dbs']).toEqual(['a', 'b']);
  });

  it('reads our backup options: backup_compression and backup_retries (0 turns new starts off; below 0 counts as 0)', () => {
    const c = loadConfig({ configFiles: [write('b.conf', GUEST + 'backup_compression = zstd\nbackup_retries = 3\n')] });
    expect(c.backup).toMatchObject({ compression: 'zstd', retries: 3 });
    expect(loadConfig({ configFiles: [write('b0.conf', GUEST + 'backup_retries = 0\n')] }).backup.retries).toBe(0);
    expect(loadConfig({ configFiles: [write('bn.conf', GUEST + 'backup_retries = -2\n')] }).backup.retries).toBe(0);
    expect(errorOf({ configFiles: [write('bx.conf', GUEST + 'backup_retries = twice\n')] }).message).toContain('backup_retries');
  });

  it('substitutes $option references as oslo does', () => {
    const f = write('g.conf', GUEST + '[mysql]\nmount_point = /data\ndevice_path = ${mysql.mount_point}/dev $$x \\$y\n');
    expect(loadConfig({ configFiles: [f] }).datastoreSections.mysql['device_path']).toBe('/data/dev $x $y');
    // A string default is substituted and converted: mariadb's default_password_length is "${mysql.default_password_length}".
    expect(loadConfig({ configFiles: [f] }).datastoreSections.mariadb['default_password_length']).toBe(36);
    const bad = write('b.conf', GUEST + 'conductor_queue = $nosuchoption\n');
    expect(errorOf({ configFiles: [bad] }).message).toBe(`${bad}:3: [DEFAULT] conductor_queue: unknown substitution variable $nosuchoption`);
  });

  it('ignores unknown options and sections', () => {
    const c = loadConfig({ configFiles: [write('g.conf', GUEST + 'no_such = 1\n[whatever]\nx = y\n')] });
    expect(c.guestId).toBe('g-1');
  });

  it('names file, line, section and option for invalid values', () => {
    const f = write('trove-guestagent.conf', GUEST + 'report_interval = abc\n');
    const e = errorOf({ configFiles: [f] });
    expect(e.message).toBe(`${f}:3: [DEFAULT] report_interval: invalid integer "abc"`);
    expect(e.where).toEqual({ file: f, section: 'DEFAULT', option: 'report_interval' });
    const g = write('b.conf', GUEST + '[postgresql]\nvolume_support = sometimes\n');
    expect(errorOf({ configFiles: [g] }).message).toBe(`${g}:4: [postgresql] volume_support: invalid boolean "sometimes"`);
    const h = write('c.conf', GUEST + '[oslo_messaging_rabbit]\nrabbit_transient_queues_ttl = 0\n');
    expect(errorOf({ configFiles: [h] }).message).toContain('[oslo_messaging_rabbit] rabbit_transient_queues_ttl: should be greater than or equal to 1');
  });

  it('names file and line for malformed files', () => {
    const f = write('g.conf', GUEST + 'garbage line\n');
    expect(errorOf({ configFiles: [f] }).message).toBe(`${f}: line 3: No ':' or '=' found in assignment`);
  });

  it('fails on a missing guest_id, missing file or missing dir', () => {
    expect(errorOf({ configFiles: [write('x.conf', '[DEFAULT]\ndebug = true\n')] }).message).toMatch(/\[DEFAULT\] guest_id: .*not set/u);
    expect(errorOf({ configFiles: [write('y.conf', '[DEFAULT]\nguest_id =\n')] }).where.option).toBe('guest_id');
    expect(errorOf({ configFiles: [join(dir, 'nope.conf')] }).message).toBe(`${join(dir, 'nope.conf')}: config file not found`);
    expect(errorOf({ configDirs: [join(dir, 'nodir')] }).message).toContain('failed to read config file directory');
  });

  it('reads [service_credentials]: Trove\'s placeholder auth_url means no Keystone; an application credential needs both halves and an auth_url', () => {
    const plain = loadConfig({ configFiles: [write('a.conf', GUEST)] });
    expect(plain.keystone).toEqual({ authUrl: null, regionName: 'RegionOne', applicationCredential: null });
    const withKs = loadConfig({ configFiles: [write('b.conf', `${GUEST}[service_credentials]\nauth_url = http://k:5000/v3\nregion_name = R2\napplication_credential_id = AC\napplication_credential_secret = s3cr3t-value\n`)] });
    expect(withKs.keystone).toEqual({ authUrl: 'http://k:5000/v3', regionName: 'R2', applicationCredential: { id: 'AC', secret: 's3cr3t-value' } });
    const half = errorOf({ configFiles: [write('c.conf', `${GUEST}[service_credentials]\nauth_url = http://k:5000/v3\napplication_credential_secret = s3cr3t-value\n`)] });
    expect(half.message).toMatch(/application_credential_id: required/);
    expect(half.message).not.toContain('s3cr3t-value');
    const noUrl = errorOf({ configFiles: [write('d.conf', `${GUEST}[service_credentials]\napplication_credential_id = AC\napplication_credential_secret = s3cr3t-value\n`)] });
    expect(noUrl.message).toMatch(/auth_url: required/);
  });

  it('never puts secrets into error messages', () => {
    const f = write('g.conf', GUEST + 'transport_url = rabbit://u:topsecret@h:bad/\n');
    const e = errorOf({ configFiles: [f] });
    expect(e.message).toBe(`${f}: [DEFAULT] transport_url: invalid port for host h`);
    expect(e.message).not.toContain('topsecret');
  });

  it('loads the Trove 18 style guest_info.conf + trove-guestagent.conf pair', () => {
    const c = loadConfig({
      configFiles: [join(FIXTURES, 'guest_info.conf'), join(FIXTURES, 'trove-guestagent.conf')],
    });
    // Expected values checked against Trove 18's own CONF on the same files.
    expect(c.guestId).toBe('5f1c2a7e-93b4-4d8e-a1f0-6c2d9e8b7a10');
    expect(c.datastoreManager).toBe('mysql');
    expect(c.datastoreVersion).toBe('8.0.36');
    expect(c.tenantId).toBe('a6b0f7d2c4e94a1b8f3e2d1c0b9a8f7e');
    expect(c.instanceRpcEncrKey).toBe('bd3bd1e46a1d4ee1b4ad6a0c1e2f3a4b');
    expect(c.controlExchange).toBe('trove');
    expect(c.debug).toBe(true);
    expect(c.stateChangeWaitTimeSec).toBe(600);
    expect(c.rabbit.retryIntervalMs).toBe(2000);
    expect(c.rabbit.heartbeatTimeoutThresholdSec).toBe(30);
    expect(c.transportUrl.hosts).toEqual([
      { host: '10.0.0.11', port: 5672, username: 'openstack', password: 'p@ss:w0rd' },
      { host: '10.0.0.12', port: 5672, username: 'openstack', password: 'p@ss:w0rd' },
    ]);
    expect(c.transportUrl.virtualHost).toBe('/');
    expect(c.backup.swiftUrl).toBe('http://10.0.0.10:8080/v1/AUTH_');
    expect(c.datastoreSections.mysql['ignore_users']).toEqual(['os_admin']);
    expect(c.datastoreSections.mysql['volume_support']).toBe(true);
    expect(c.datastoreSections.postgresql['mount_point']).toBe('/var/lib/postgresql');
  });
});
