/** rabbitmqctl against the suite's private node (see test/integration/setup/rabbit.ts). */
import { execFileSync } from 'node:child_process';
import type { RabbitInfo } from '../setup/rabbit.ts';

export interface QueueRow {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: Record<string, unknown>;
  type: string;
}

function ctl(r: RabbitInfo, args: string[]): string {
  return execFileSync('rabbitmqctl', ['-n', r.node, ...args], { env: { ...process.env, ...r.ctlEnv }, encoding: 'utf8', timeout: 60_000 });
}

export function listQueues(r: RabbitInfo): QueueRow[] {
  const out = ctl(r, ['list_queues', 'name', 'durable', 'auto_delete', 'arguments', 'type', '--formatter', 'json', '-q']);
  const rows = JSON.parse(out) as Array<Record<string, unknown>>;
  return rows.map((row) => {
    const args = row['arguments'];
    // rabbitmqctl prints arguments as a list of [key, value] pairs or an object, by version.
    // (as [key, type, value] triples in 3.10's JSON formatter).
    const argObj = Array.isArray(args)
      ? Object.fromEntries((args as unknown[][]).map((a) => [a[0], a.length === 3 ? a[2] : a[1]]))
      : ((args ?? {}) as Record<string, unknown>);
    return { name: String(row['name']), durable: row['durable'] === true, auto_delete: row['auto_delete'] === true, arguments: argObj, type: String(row['type'] ?? '') };
  });
}

/** Takes the broker away (closing every connection) and brings it back. */
export function stopApp(r: RabbitInfo): void {
  ctl(r, ['stop_app']);
}
export function startApp(r: RabbitInfo): void {
  ctl(r, ['start_app']);
  ctl(r, ['await_startup']);
}
