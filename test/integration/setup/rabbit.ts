/**
 * Suite-wide private RabbitMQ node (Debian's rabbitmq-server), on free ports
 * in a temp dir, with a plain and a TLS listener (a throwaway CA made with
 * openssl). The machine's own broker on 5672 is never touched. Tests reach the
 * node through `inject('rabbit')` and can stop/start its app to simulate an
 * outage (test/integration/harness/rabbit.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort } from '../harness/ports.ts';

export interface RabbitInfo {
  url: string;
  port: number;
  tlsPort: number;
  caFile: string;
  node: string;
  /** Environment for rabbitmqctl against this node. */
  ctlEnv: Record<string, string>;
}

declare module 'vitest' {
  interface ProvidedContext {
    rabbit: RabbitInfo;
  }
}

function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'ext.cnf');
  const o = { stdio: 'ignore' as const };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=guestagent-test-ca'], o);
  execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost'], o);
  writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext], o);
  return { ca, cert, key };
}

let nodeSeq = 0;

/** Starts a private node; `stop` stops it and removes its files. */
export async function startRabbitNode(): Promise<{ info: RabbitInfo; stop: () => Promise<void> }> {
  if (!existsSync('/usr/sbin/rabbitmq-server')) {
    throw new Error('rabbitmq-server is not installed: apt-get install -y rabbitmq-server (or run scripts/install-deps.sh)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'ga-rabbit-'));
  const [port, tlsPort, distPort] = [await freePort(), await freePort(), await freePort()];
  const node = `ga-test-${process.pid}-${nodeSeq++}@localhost`;
  for (const d of ['mnesia', 'log']) mkdirSync(join(dir, d));
  const certs = makeCerts(dir);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = ${port}`,
      `listeners.ssl.default = ${tlsPort}`,
      `ssl_options.cacertfile = ${certs.ca}`,
      `ssl_options.certfile = ${certs.cert}`,
      `ssl_options.keyfile = ${certs.key}`,
      'ssl_options.verify = verify_none',
      'ssl_options.fail_if_no_peer_cert = false',
      'loopback_users = none',
      'disk_free_limit.absolute = 50MB',
      '',
    ].join('\n'),
  );
  // rabbitmq-server drops to the rabbitmq user: it must own its directories.
  execFileSync('chown', ['-R', 'rabbitmq:rabbitmq', dir]);
  chownSync(dir, 0, 0);
  execFileSync('chmod', ['755', dir]);
  const ctlEnv: Record<string, string> = {
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
  };
  const child = spawn('rabbitmq-server', [], { env: { ...process.env, ...ctlEnv }, stdio: 'ignore', detached: true });
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  child.unref();
  // The node registers with epmd a few seconds after launch; await_startup fails fast before that.
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      execFileSync('rabbitmqctl', ['-n', node, 'await_startup', '--timeout', '60'], { env: { ...process.env, ...ctlEnv }, stdio: 'pipe', timeout: 90_000 });
      break;
    } catch (e) {
      if (exited !== null || Date.now() > deadline) {
        throw new Error(`private RabbitMQ did not start (exit ${exited}; logs in ${dir}/log): ${(e as Error).message.slice(0, 300)}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const info = { url: `amqp://guest:guest@127.0.0.1:${port}/`, port, tlsPort, caFile: certs.ca, node, ctlEnv };
  const stop = async (): Promise<void> => {
    try {
      execFileSync('rabbitmqctl', ['-n', node, 'stop'], { env: { ...process.env, ...ctlEnv }, stdio: 'ignore', timeout: 60_000 });
    } catch {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { info, stop };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { info, stop } = await startRabbitNode();
  project.provide('rabbit', info);
  return stop;
}
