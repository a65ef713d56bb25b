/**
 * Runs the agent in-process, configured the way Trove configures a guest:
 * guest_info.conf and trove-guestagent.conf written to a conf.d directory and
 * read through the real config loader and composition root (src/main.ts).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { createLogger } from '../../../src/log.ts';
import type { Agent } from '../../../src/agent.ts';
import type { DatastoreFactory } from '../../../src/datastore.ts';
import { resolveSettings, runDaemon } from '../../../src/main.ts';
import { afterAll } from 'vitest';

export interface TestAgentOptions {
  transportUrl: string;
  guestId: string;
  key: string | null;
  factory: DatastoreFactory;
  /** Extra INI text appended to trove-guestagent.conf (may open sections). */
  extraConf?: string;
  reportInterval?: number;
  /** control_exchange (default trove); tests with other exchange properties need their own. */
  exchange?: string;
  /** conductor_queue; each test file's conductor needs its own, or files steal each other's casts. */
  conductorQueue?: string;
  /** datastore_manager in guest_info.conf (default mysql). */
  manager?: string;
  /** TCP port for a datastore the agent runs itself. */
  datastorePort?: number;
  /** guest_info's datastore_version (default 10.11). */
  datastoreVersion?: string;
  log?: Logger;
  /** An earlier agent's root (TestAgent.root): the same guest, restarted on its state. */
  root?: string;
  /** The agent's log level (default warn). Its lines go through the agent's own logger (redaction included) into logText(). */
  logLevel?: string;
  /** How long in-flight calls may run on after agent.stop() before they are aborted (the daemon's default is 20 s). */
  graceMs?: number;
}

export interface TestAgent {
  agent: Agent;
  stateDir: string;
  confDir: string;
  root: string;
  /** The agent's last warnings and errors (JSON lines), for assertion messages: why a prepare failed. */
  logTail(): string;
  /** Everything the agent logged at `logLevel`, as an operator's journal would hold it. */
  logText(): string;
}

/**
 * Roots this test file made: removed after its last test (a run used to leave them all, ~20 MB
 * each, mostly server data; the file's own afterAll hooks have stopped the agents by then).
 * GA_KEEP_AGENT=1 keeps them.
 */
const roots = new Set<string>();
afterAll(() => {
  if (process.env['GA_KEEP_AGENT']) return;
  for (const r of roots) rmSync(r, { recursive: true, force: true, maxRetries: 2 });
});

export async function startTestAgent(o: TestAgentOptions): Promise<TestAgent> {
  const root = o.root ?? mkdtempSync(join(tmpdir(), 'ga-agent-'));
  roots.add(root);
  const confDir = join(root, 'conf.d');
  const stateDir = join(root, 'state');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(confDir, { recursive: true });
  writeFileSync(
    join(confDir, 'guest_info.conf'),
    `[DEFAULT]\nguest_id=${o.guestId}\ndatastore_manager=${o.manager ?? 'mysql'}\ndatastore_version=${o.datastoreVersion ?? '10.11'}\ntenant_id=peer-project\n` +
      (o.key ? `instance_rpc_encr_key=${o.key}\n` : ''),
  );
  writeFileSync(
    join(confDir, 'trove-guestagent.conf'),
    `[DEFAULT]\ntransport_url = ${o.transportUrl.replace(/^amqp:/, 'rabbit:')}\ncontrol_exchange = ${o.exchange ?? 'trove'}\n` +
      `report_interval = ${o.reportInterval ?? 30}\n` +
      (o.conductorQueue ? `conductor_queue = ${o.conductorQueue}\n` : '') +
      `[oslo_messaging_rabbit]\nkombu_reconnect_delay = 0.5\nrabbit_retry_interval = 1\n` +
      (o.extraConf ?? ''),
  );
  const settings = resolveSettings(
    {
      kind: 'daemon', configFiles: [], configDirs: [confDir], sources: [{ kind: 'dir', path: confDir }], datastore: null, guestId: null,
      transportUrl: null, rpcKey: null, rpcKeyFile: null, stateDir, runner: 'process', datastorePort: o.datastorePort ?? null, logFormat: null, logLevel: null,
    },
    {},
  );
  const all: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      all.push(chunk.toString().trimEnd());
      cb();
    },
  });
  const log = o.log ?? (process.env['GA_TEST_LOG'] ? pino({ level: process.env['GA_TEST_LOG'] }) : createLogger({ level: o.logLevel ?? 'warn', destination: sink }));
  const agent = await runDaemon(settings, log, { factory: o.factory, ...(o.graceMs !== undefined ? { graceMs: o.graceMs } : {}) });
  const levels = new Set(['warn', 'error', 'fatal', '40', '50', '60']);
  const tail = () => all.filter((l) => levels.has(/"level":"?(\w+)"?/.exec(l)?.[1] ?? '')).slice(-50).join('\n');
  return { agent, stateDir, confDir, root, logTail: tail, logText: () => all.join('\n') };
}

/** A self-run PostgreSQL runs as postgres: the agent's state dirs (the harness makes them 0700) must let it through. */
export function openedForPostgres(ta: TestAgent): TestAgent {
  chmodSync(dirname(ta.stateDir), 0o711);
  mkdirSync(ta.stateDir, { recursive: true, mode: 0o711 });
  chmodSync(ta.stateDir, 0o711);
  return ta;
}
