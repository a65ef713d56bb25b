/**
 * The `systemd` runner: the distribution's own unit (mariadb.service,
 * postgresql@15-main.service, redis-server.service) through systemctl, argv
 * only. What the unit reports is only a hint: a datastore's status comes from
 * the server itself.
 */
import type { OpContext } from '../datastore.ts';
import type { Exec } from '../process/exec.ts';
import type { ServiceRunner } from './runner.ts';

export function createSystemdRunner(unit: string, exec: Exec): ServiceRunner {
  if (!/^[A-Za-z0-9@._-]+$/.test(unit)) throw new Error(`invalid systemd unit name: ${unit}`);
  let last: 'running' | 'stopped' | 'unknown' = 'unknown';
  const ctl = (ctx: OpContext, ...args: string[]) => exec('systemctl', [...args, unit], { signal: ctx.signal, log: ctx.log, timeoutMs: 600_000 });
  return {
    kind: 'systemd',
    async start(ctx) {
      await ctl(ctx, 'enable');
      await ctl(ctx, 'start');
      last = 'running';
    },
    async stop(ctx, opts) {
      await ctl(ctx, 'stop');
      if (opts?.disableOnBoot) await ctl(ctx, 'disable');
      last = 'stopped';
    },
    async restart(ctx) {
      await ctl(ctx, 'restart');
      last = 'running';
    },
    state: () => last,
    async close() {
      // The unit outlives the agent.
    },
  };
}
