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

export interface ConsumerRow {
  queue: string;
  ackRequired: boolean;
  prefetchCount: number;
  /** The channels open on the consumer's connection. */
  connectionChannels: number;
}

/** Each consumer of the queues named, with its channel's settings and how many channels its connection has open. */
export function listConsumers(r: RabbitInfo, queues: (name: string) => boolean): ConsumerRow[] {
  const json = (args: string[]) => JSON.parse(ctl(r, [...args, '--formatter', 'json', '-q'])) as Array<Record<string, unknown>>;
  const channels = json(['list_channels', 'pid', 'connection']);
  const connectionOf = new Map(channels.map((c) => [String(c['pid']), String(c['connection'])]));
  return json(['list_consumers', 'queue_name', 'channel_pid', 'ack_required', 'prefetch_count'])
    .filter((c) => queues(String(c['queue_name'])))
    .map((c) => {
      const conn = connectionOf.get(String(c['channel_pid']));
      return {
        queue: String(c['queue_name']),
        ackRequired: c['ack_required'] === true,
        prefetchCount: Number(c['prefetch_count']),
        connectionChannels: channels.filter((ch) => conn !== undefined && String(ch['connection']) === conn).length,
      };
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
