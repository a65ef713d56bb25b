// The command line as an operator uses it: a bad config file stops the agent
// with a message naming the file and option; a local run answers and exits 0
// on SIGTERM; `guestagent call` talks to it.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { rssFileMiB } from '../../src/process/idle-memory.ts';
import { testDir } from '../tmp.ts';
import { freePort } from './harness/ports.ts';
import { PythonConductor, serviceStatus } from './harness/python-peer.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = process.execPath;
const BIN = join(ROOT, 'bin/guestagent.js');
const rabbit = inject('rabbit');
const transport = rabbit.url.replace(/^amqp:/, 'rabbit:');

/** Polls rpc_ping until the agent answers (up to 15 s); its answer, or '' if none. */
async function firstPing(call: (...args: string[]) => Promise<{ stdout: string }>): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const answer = await call('rpc_ping').then((r) => r.stdout.trim(), () => '');
    if (answer) return answer;
    await new Promise((r) => setTimeout(r, 250));
  }
  return '';
}

describe('guestagent command line', () => {
  it('refuses an invalid config value with the file, option and reason, exit 1', async () => {
    const dir = testDir('ga-cli-');
    const bad = join(dir, 'trove-guestagent.conf');
    writeFileSync(bad, '[DEFAULT]\nguest_id = g\ndatastore_manager = mysql\nreport_interval = soon\n');
    const err = await run(NODE, [BIN, '--config-file', bad], { timeout: 30_000 }).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain(bad);
    expect(err?.stderr).toContain('report_interval');
  });

  it('runs locally through its launcher, answers guestagent call, and exits 0 on SIGTERM', async () => {
    const state = testDir('ga-cli-state-');
    // As `npx guestagent` runs it: the kernel reads the launcher's shebang.
    const child = spawn(BIN, ['--datastore', 'mysql', '--state-dir', state, '--transport-url', transport, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const call = (...args: string[]) => run(NODE, [BIN, 'call', '--state-dir', state, '--transport-url', transport, '--timeout', '5', ...args], { timeout: 30_000 });
    expect(await firstPing(call)).toBe('true');
    expect(stderr).toMatch(/serving guestagent\.[0-9a-f-]{36}/);
    const missing = await call('no_such_method').then(() => null, (e: { code: number; stderr: string }) => e);
    expect(missing?.code).toBe(1);
    expect(missing?.stderr).toContain('NoSuchMethod');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const t = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t).toBeLessThan(30_000);
    // npm ci built native/build/idle-memory.node and the launcher found it (else a warning says why).
    expect(stdout + stderr).not.toContain('idle memory module unavailable');
  });

  it('once quiet after start-up, gives the code only start-up ran back to the kernel, and answers on', async () => {
    const dir = testDir('ga-cli-pageout-');
    // A Node binary of its own, as on a guest: pages this process maps as well are not its to give.
    mkdirSync(join(dir, 'bin'));
    copyFileSync(realpathSync(NODE), join(dir, 'bin', 'node'));
    const state = join(dir, 'state');
    const child = spawn(BIN, ['--datastore', 'mysql', '--state-dir', state, '--transport-url', transport, '--log-level', 'debug'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH'] ?? ''}` },
    });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let output = '';
    for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (output += d.toString()));
    const call = (...args: string[]) => run(NODE, [BIN, 'call', '--state-dir', state, '--transport-url', transport, '--timeout', '5', ...args], { timeout: 30_000 });
    const rssFile = () => rssFileMiB(() => readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    expect(await firstPing(call)).toBe('true');
    const before = rssFile();
    // The quiet spell's last pass comes 15 s after the last call.
    for (let i = 0; i < 60 && !output.includes('paged out'); i++) await new Promise((r) => setTimeout(r, 500));
    const after = rssFile();
    expect(output).toContain('paged out code not run since start-up');
    // Measured: 44 -> 12-15 MiB of the binary's pages.
    expect(before).toBeGreaterThan(30);
    expect(after).toBeLessThan(before - 15);
    expect((await call('rpc_ping')).stdout.trim()).toBe('true');
    child.kill('SIGTERM');
  }, 60_000);

  it.each([
    ['mysql', '10.11', /mysqld|mariadbd/],
    ['postgresql', '15', /postgres/],
  ])('%s: an agent killed in the middle of prepare reports failed to spawn when started again, and does not prepare again', async (datastore, version, server) => {
    const dir = testDir('ga-cli-kill-');
    chmodSync(dir, 0o711); // a self-run PostgreSQL runs as postgres and must get through to its data directory
    const state = join(dir, 'state');
    const queue = `trove-conductor-${randomUUID()}`;
    const conf = join(dir, 'trove-guestagent.conf');
    writeFileSync(conf, `[DEFAULT]\ncontrol_exchange = trove\nconductor_queue = ${queue}\nreport_interval = 2\n`);
    const env = { ...process.env, GUESTAGENT_RPC_KEY: 'kill-test-key' };
    const agentArgs = ['--config-file', conf, '--datastore', datastore, '--state-dir', state, '--transport-url', transport, '--datastore-port', String(await freePort()), '--log-level', 'warn'];
    const start = () => {
      const child = spawn(BIN, agentArgs, { stdio: ['ignore', 'pipe', 'pipe'], env });
      let stderr = '';
      for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (stderr += d.toString()));
      onTestFinished(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return { child, output: () => stderr };
    };
    // The killed agent's mysqld outlives it, as a crashed agent's server would: stopped by hand after the test.
    const servers = () => execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n').filter((l) => server.test(l) && l.includes(state)).map((l) => Number(l.trim().split(/\s+/)[0]));
    onTestFinished(() => void servers().forEach((pid) => process.kill(pid, 'SIGKILL')));
    const call = (...args: string[]) => run(NODE, [BIN, 'call', '--config-file', conf, '--state-dir', state, '--transport-url', transport, '--timeout', '5', ...args], { timeout: 30_000, env });
    const first = start();
    expect(await firstPing(call)).toBe('true');
    const guestId = readFileSync(join(state, 'guest-id'), 'utf8').trim();
    const conductor = await PythonConductor.start({ url: rabbit.url, keys: { [guestId]: 'kill-test-key' }, queue });
    onTestFinished(() => conductor.close());
    await call('--cast', 'prepare', JSON.stringify({ memory_mb: 512, packages: '', databases: [{ _name: 'shop' }], users: [], ds_version: version }));
    // Killed once prepare has begun (its start marker), before it ends.
    const marker = join(state, '.guestagent.prepare.start');
    for (let i = 0; i < 400 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(marker)).toBe(true);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    expect(existsSync(join(state, '.guestagent.prepare.end'))).toBe(false);
    // What the killed agent had already sent is on its way: only what comes after the restart counts.
    await new Promise((r) => setTimeout(r, 1000));

    const from = conductor.received.length;
    const second = start();
    for (let i = 0; i < 300 && !second.output().includes('an earlier prepare did not complete'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(second.output()).toContain('an earlier prepare did not complete');
    const failed = await conductor.waitFor((c) => c.kwargs['instance_id'] === guestId && serviceStatus(c) === 'failed to spawn', 30_000, from);
    expect(failed.method).toBe('heartbeat');
    // Trove does not send prepare twice; were it sent, the agent would not run it again.
    await call('--cast', 'prepare', JSON.stringify({ memory_mb: 512, packages: '', databases: [], users: [], ds_version: version }));
    await new Promise((r) => setTimeout(r, 2500));
    expect(existsSync(join(state, '.guestagent.prepare.end'))).toBe(false);
    expect(await call('rpc_ping').then((r) => r.stdout.trim())).toBe('true');
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });

  it('speaks sd_notify under a Type=notify unit: STATUS while connecting, READY=1, watchdog pings, STOPPING=1', async () => {
    const dir = testDir('ga-notify-');
    const socketPath = join(dir, 'notify.sock');
    // systemd's end of the protocol: a datagram socket printing what it receives (Node has no AF_UNIX datagrams).
    const listener = spawn('/usr/bin/python3', ['-u', '-c', `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('bound')
while True:
    print(json.dumps(s.recv(4096).decode()))
`, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void listener.kill('SIGKILL'));
    const messages: string[] = [];
    let buffered = '';
    const bound = new Promise<void>((resolve) =>
      listener.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const l of lines) {
          if (l === 'bound') resolve();
          else messages.push(JSON.parse(l) as string);
        }
      }),
    );
    await bound;
    const state = testDir('ga-cli-state-');
    const child = spawn(NODE, [BIN, '--datastore', 'mysql', '--state-dir', state, '--transport-url', transport, '--log-level', 'warn'], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000' },
    });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 150 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(ok(), `${what}; got ${JSON.stringify(messages)}`).toBe(true);
    };
    await until('READY=1', () => messages.some((m) => m.split('\n').includes('READY=1')));
    expect(messages[0]).toMatch(/^STATUS=connecting to the broker for guestagent\./);
    expect(messages.find((m) => m.includes('READY=1'))).toMatch(/STATUS=serving guestagent\.[0-9a-f-]{36}/);
    const ready = messages.length;
    await until('watchdog pings every WATCHDOG_USEC/2', () => messages.slice(ready).filter((m) => m === 'WATCHDOG=1').length >= 3);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until('STOPPING=1', () => messages.some((m) => m.startsWith('STOPPING=1')));
  });

  it('writes its log to log_dir as oslo.log would (the SYS guest log), reopened after rotation on SIGHUP, secrets redacted', async () => {
    const dir = testDir('ga-cli-log-');
    const state = join(dir, 'state');
    const conf = join(dir, 'extra.conf');
    writeFileSync(conf, `[DEFAULT]\nlog_dir = ${dir}/logs\n`);
    const child = spawn(NODE, [BIN, '--datastore', 'mysql', '--state-dir', state, '--transport-url', transport, '--config-file', conf, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const file = join(dir, 'logs', 'trove-guestagent.log');
    const call = (...args: string[]) => run(NODE, [BIN, 'call', '--state-dir', state, '--transport-url', transport, '--timeout', '5', ...args], { timeout: 30_000 });
    expect(await firstPing(call)).toBe('true');
    await new Promise((r) => setTimeout(r, 300)); // async file writes
    const first = readFileSync(file, 'utf8');
    expect(first).toContain('"msg":"guest agent ready"');
    for (const line of first.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(first).not.toContain('guest:guest@');
    renameSync(file, `${file}.1`);
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, 'utf8')).toContain('stopping');
  });
});
