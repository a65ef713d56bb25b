// The Redis server log as the 'redis' guest log: where it is, that the agent's
// logfile line comes after the overrides include, and that it cannot be switched.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createRedisDatastore } from '../../../datastores/redis/index.ts';
import { testDir } from '../../tmp.ts';

const make = (stateDir: string) => createRedisDatastore({ log: pino({ level: 'silent' }), section: {}, runner: 'process', stateDir, port: 1, events: {} });
const ctx = { log: pino({ level: 'silent' }), signal: new AbortController().signal };

describe('redis guest log', () => {
  it("is the SYSTEM log 'redis' at <state>/log/redis-server.log, always on", async () => {
    const dir = testDir('ga-redis-log-');
    const logs = make(dir).logs!;
    expect(logs.defs()).toEqual([{ name: 'redis', type: 'SYS', file: join(dir, 'log', 'redis-server.log') }]);
    expect(await logs.isEnabled('redis')).toBe(true);
    await expect(logs.setEnabled('redis', false, ctx)).rejects.toThrow(/always on/);
  });

  it('writes logfile after the overrides include, so neither the config nor an override moves it', async () => {
    const dir = testDir('ga-redis-log-');
    const ds = make(dir);
    await ds.configuration!.resetConfiguration('logfile /tmp/elsewhere.log\nsave ""\n', ctx);
    await ds.configuration!.updateOverrides({ logfile: '/tmp/override.log' }, false, ctx);
    const conf = readFileSync(join(dir, 'redis.conf'), 'utf8').split('\n');
    const own = conf.indexOf(`logfile "${join(dir, 'log', 'redis-server.log')}"`);
    expect(own).toBeGreaterThan(conf.indexOf(`include ${join(dir, 'overrides.conf')}`));
    expect(conf.indexOf(`include ${join(dir, 'overrides.conf')}`)).toBeGreaterThan(0);
    // Trove's config comes after the agent's defaults (which it may change) and before the include.
    expect(conf.indexOf('repl-diskless-sync-delay 0')).toBeLessThan(conf.indexOf('logfile /tmp/elsewhere.log'));
    expect(conf.indexOf('logfile /tmp/elsewhere.log')).toBeLessThan(conf.indexOf(`include ${join(dir, 'overrides.conf')}`));
  });
});
