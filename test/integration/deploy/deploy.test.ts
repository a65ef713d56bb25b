// What goes into a guest: the cloud-init templates pass `cloud-init schema`,
// the systemd unit passes `systemd-analyze verify`, and the release tarball
// runs with its own Node on a PATH without one, answering rpc_ping.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { RpcClient } from '../../../src/rpc/client.ts';
import { testDir } from '../../tmp.ts';
import { freePort } from '../harness/ports.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const rabbit = inject('rabbit');

/** The release, built and unpacked once for the tests that run it. */
let built: Promise<{ tarball: string; dir: string }> | undefined;
const release = () =>
  (built ??= (async () => {
    const { stdout } = await run(join(ROOT, 'scripts/build-release.sh'), [], { cwd: ROOT, timeout: 300_000, maxBuffer: 10 * 1024 * 1024 });
    const tarball = /dist\/(guestagent-[^ ]+\.tar\.gz)/.exec(stdout)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'ga-release-'));
    chmodSync(dir, 0o711); // a self-run PostgreSQL runs as postgres and must get through to its data directory
    await run('tar', ['-xzf', join(ROOT, 'dist', tarball), '-C', dir, '--strip-components=1']);
    return { tarball, dir };
  })());

describe('deployment', () => {
  afterAll(async () => {
    if (built && !process.env['GA_KEEP_AGENT']) rmSync((await built).dir, { recursive: true, force: true });
  });

  it('every cloud-init template is valid cloud-config', async () => {
    if (!existsSync('/usr/bin/cloud-init')) throw new Error('cloud-init missing: apt-get install -y cloud-init python3-jsonschema (scripts/install-deps.sh)');
    const templates = readdirSync(join(ROOT, 'cloudinit')).filter((f) => f.endsWith('.cloudinit'));
    expect(templates.sort()).toEqual(['mariadb.cloudinit', 'mysql.cloudinit', 'postgresql.cloudinit', 'redis.cloudinit']);
    for (const t of templates) {
      const { stdout } = await run('cloud-init', ['schema', '--config-file', join(ROOT, 'cloudinit', t)]);
      expect(stdout).toContain('Valid cloud-config');
    }
  });

  it("each template stays valid with what Trove 18 appends (injected files), and keeps both parts", async () => {
    // BaseInstance.prepare_cloud_config, the real Trove code: template text + "#cloud-config\nwrite_files: ...".
    const script = [
      'import json, sys, warnings', 'warnings.filterwarnings("ignore")',
      'from trove.common import cfg', 'cfg.CONF([], project="trove")',
      'from trove.instance.models import BaseInstance',
      'files = {"/etc/trove/conf.d/guest_info.conf": "[DEFAULT]\\nguest_id=g\\n", "/etc/trove/conf.d/trove-guestagent.conf": "[DEFAULT]\\n"}',
      'sys.stdout.write(BaseInstance.prepare_cloud_config(None, files))',
    ].join('\n');
    const appended = (await run('/usr/bin/python3', ['-c', script])).stdout;
    expect(appended).toContain('write_files:');
    const dir = testDir('ga-ud-');
    for (const t of readdirSync(join(ROOT, 'cloudinit'))) {
      const merged = join(dir, t);
      writeFileSync(merged, readFileSync(join(ROOT, 'cloudinit', t), 'utf8') + appended);
      const { stdout } = await run('cloud-init', ['schema', '--config-file', merged]);
      expect(stdout).toContain('Valid cloud-config');
      const parsed = JSON.parse((await run('/usr/bin/python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', merged])).stdout);
      expect(parsed.write_files.map((f: { path: string }) => f.path)).toContain('/etc/trove/conf.d/guest_info.conf');
      expect(JSON.stringify(parsed.runcmd)).toContain('guestagent.service');
    }
  });

  it('the systemd unit verifies', async () => {
    const dir = testDir('ga-unit-');
    // verify wants ExecStart to exist: point it at a stand-in with the same arguments.
    const unit = readFileSync(join(ROOT, 'systemd/guestagent.service'), 'utf8').replace('/opt/guestagent/bin/guestagent', '/bin/true');
    writeFileSync(join(dir, 'guestagent.service'), unit);
    const { stdout, stderr } = await run('systemd-analyze', ['verify', join(dir, 'guestagent.service')]);
    expect(`${stdout}${stderr}`.trim()).toBe('');
    expect(unit).toMatch(/^TimeoutStopSec=60$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
  });

  it('the release tarball runs with its bundled Node and answers within a second of launch', async () => {
    const { tarball, dir } = await release();
    // A PATH with only what the launcher script itself uses: no node at all.
    const bin = join(dir, 'pathbin');
    mkdirSync(bin);
    for (const tool of ['dirname', 'readlink']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
    const env = { PATH: bin, HOME: dir };
    await expect(run('/bin/sh', ['-c', 'command -v node'], { env })).rejects.toBeTruthy();
    const help = await run(join(dir, 'bin/guestagent'), ['--help'], { env });
    expect(help.stdout).toContain('guestagent [--config-file FILE]');

    const guestId = 'release-' + Date.now();
    const started = performance.now();
    const child = spawn(join(dir, 'bin/guestagent'), ['--datastore', 'redis', '--guest-id', guestId, '--state-dir', join(dir, 'state'), '--transport-url', rabbit.url.replace(/^amqp:/, 'rabbit:'), '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const model = await amqplib.connect(rabbit.url, { noDelay: true });
    const client = new RpcClient(model, 'openstack', null);
    await client.open();
    let answeredMs = -1;
    while (performance.now() - started < 20_000) {
      try {
        await client.call(`guestagent.${guestId}`, 'rpc_ping', {}, { timeoutMs: 25 });
        answeredMs = performance.now() - started;
        break;
      } catch {
        // not up yet
      }
    }
    await client.close();
    await model.close();
    child.kill('SIGTERM');
    console.log(`release: ${tarball}, first rpc_ping answer ${answeredMs.toFixed(0)} ms after launch`);
    expect(answeredMs).toBeGreaterThan(0);
    expect(answeredMs).toBeLessThan(1000);
    // The tarball carries the idle-memory module where its launcher says.
    expect(output).not.toContain('idle memory module unavailable');
    // One bundle instead of node_modules, with the bundled packages' licenses.
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);
    for (const f of ['app/main.js', 'licenses/amqplib.LICENSE', 'licenses/pino.LICENSE', 'licenses/mysql2.License', 'runtime/LICENSE']) expect(existsSync(join(dir, f)), f).toBe(true);
    // Node's own, beside the runtime it licenses.
    expect(readFileSync(join(dir, 'runtime/LICENSE'), 'utf8')).toMatch(/^Node\.js is licensed for use as follows/);
  });

  // The bundle loads each datastore's code, and what it loads lazily (mysql2, execa), from its
  // own chunks: a prepare that starts the agent's own server and a query through that driver.
  it.each([
    ['mysql', '10.11'],
    ['postgresql', '15'],
  ])('the release agent prepares a %s server of its own and lists its database', async (datastore, version) => {
    const { dir } = await release();
    const state = join(dir, `state-${datastore}`);
    mkdirSync(state, { mode: 0o711 }); // as for the release directory: postgres gets through to its data directory
    const transport = rabbit.url.replace(/^amqp:/, 'rabbit:');
    const agent = join(dir, 'bin/guestagent');
    const child = spawn(agent, ['--datastore', datastore, '--state-dir', state, '--transport-url', transport, '--datastore-port', String(await freePort()), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (output += d.toString()));
    onTestFinished(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM'); // the agent stops the server it started
      await exited;
    });
    const call = (...args: string[]) => run(agent, ['call', '--state-dir', state, '--transport-url', transport, '--timeout', '60', ...args], { timeout: 90_000 });
    let ping = '';
    for (let i = 0; i < 60 && !ping; i++) ping = await call('rpc_ping').then((r) => r.stdout.trim(), () => new Promise<string>((r) => setTimeout(() => r(''), 250)));
    expect(ping).toBe('true');
    const t0 = Date.now();
    await call('prepare', JSON.stringify({ memory_mb: 512, packages: '', databases: [{ _name: 'shop' }], users: [], ds_version: version }));
    const listed = await call('list_databases');
    expect(listed.stdout, output).toContain('"shop"');
    console.log(`release, ${datastore}: prepared and listed in ${Date.now() - t0} ms`);
  }, 120_000);
});
