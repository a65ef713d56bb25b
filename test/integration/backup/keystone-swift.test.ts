/**
 * The agent finding Swift through a real Keystone v3 (test/integration/setup/
 * keystone.ts: Debian's Keystone, and a Swift proxy with keystonemiddleware's
 * authtoken + keystoneauth): Trove 18's way with the caller's token (POST
 * /v3/auth/tokens with the token method scoped to the project, object-store
 * from the returned catalog), and the agent's own application credential.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBackupService, type CallerContext } from '../../../src/backup/service.ts';
import type { KeystoneOptions } from '../../../src/config/load.ts';
import type { BackupInfo, Datastore, OpContext } from '../../../src/datastore.ts';
import { GuestError, KeystoneError } from '../../../src/errors.ts';

const ks = inject('keystone');
const MiB = 1024 * 1024;
const log = pino({ level: 'silent' });
const ctx = (): OpContext => ({ log, signal: new AbortController().signal });
const tmp = mkdtempSync(join(tmpdir(), 'ga-ksbak-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// 3 MB of random bytes: gzip cannot shrink them, so a 1 MiB segment size makes an SLO of 3 segments.
const source = join(tmp, 'source.bin');
writeFileSync(source, randomBytes(3_000_000));

/** Just enough of a datastore for create_backup: its backup plan. */
const datastore = {
  name: 'mariadb',
  mountPoint: tmp,
  backup: {
    plan: async () => ({
      producer: { file: '/usr/bin/cat', args: [source] },
      extension: 'xbstream.gz',
      compress: true,
      metadata: () => ({ lsn: '42' }),
      cleanup: async () => {},
    }),
  },
} as unknown as Datastore;

function service(keystone: KeystoneOptions, container: string) {
  const updates: Record<string, unknown>[] = [];
  const svc = createBackupService({
    datastore,
    updateBackup: async (_id, fields) => {
      updates.push({ ...fields });
    },
    usedGb: async () => 0.01,
    container,
    segmentMaxSize: MiB,
    swiftUrl: null,
    keystone,
    datastoreVersion: '10.11',
    encryptionKey: null,
    compression: 'gzip',
  });
  return { svc, updates };
}

const swiftAt = (url: string, token: string, init: RequestInit = {}) =>
  fetch(url, { ...init, headers: { 'X-Auth-Token': token, ...(init.headers as Record<string, string> | undefined) } });

/** Backs up with the service, checks where it landed, restores it with the service's fetcher and compares bytes. */
async function backupAndRestore(svc: ReturnType<typeof service>['svc'], updates: Record<string, unknown>[], container: string, request: CallerContext): Promise<void> {
  const info: BackupInfo = { id: randomUUID(), datastore: 'mariadb', datastoreVersion: '10.11' };
  await svc.create(info, request, ctx());
  const last = updates.at(-1)!;
  expect(last['state']).toBe('COMPLETED');
  const location = `${ks.storageUrl}/${container}/${info.id}.xbstream.gz`;
  expect(last['location']).toBe(location);
  // In the project's account, as the user sees it.
  const head = await swiftAt(location, ks.userToken, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('x-static-large-object')).toBe('True');
  expect(head.headers.get('etag')?.replaceAll('"', '')).toBe(last['checksum']);
  expect(head.headers.get('x-object-meta-lsn')).toBe('42');
  const out = join(tmp, `${info.id}.restored`);
  const fetcher = svc.fetcher(request, { ...info, location, checksum: String(last['checksum']) });
  expect(await fetcher.metadata(location, ctx())).toMatchObject({ datastore: 'mariadb', lsn: '42' });
  await fetcher.restoreInto(location, String(last['checksum']), { file: '/usr/bin/dd', args: [`of=${out}`, 'bs=1M', 'status=none'] }, ctx());
  expect(readFileSync(out).equals(readFileSync(source))).toBe(true);
}

/** POST {authUrl}/auth/tokens: the status, the token and its catalog's public object-store URL in RegionOne. */
async function keystoneToken(auth: unknown): Promise<{ status: number; token: string | null; objectStore: string | undefined; projectId: string | undefined }> {
  const res = await fetch(`${ks.authUrl}/auth/tokens`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ auth }) });
  const body = (await res.json()) as { token?: { project?: { id: string }; catalog?: { type: string; endpoints: { interface: string; region_id: string; url: string }[] }[] } };
  const objectStore = body.token?.catalog
    ?.find((s) => s.type === 'object-store')
    ?.endpoints.find((e) => e.interface === 'public' && e.region_id === 'RegionOne')?.url;
  return { status: res.status, token: res.headers.get('x-subject-token'), objectStore, projectId: body.token?.project?.id };
}

describe('private Keystone + Keystone-authenticated Swift (the harness)', () => {
  const container = `harness_${randomUUID().slice(0, 8)}`;
  const object = `${ks.storageUrl}/${container}/hello.txt`;
  beforeAll(async () => {
    expect((await swiftAt(`${ks.storageUrl}/${container}`, ks.userToken, { method: 'PUT' })).status).toBe(201);
    const put = await swiftAt(object, ks.userToken, { method: 'PUT', body: 'hello keystone', headers: { 'Content-Type': 'text/plain' } });
    expect(put.status).toBe(201);
  });

  it("the user's token stores and reads an object in the project's account; a wrong token or none gets 401", async () => {
    expect(ks.storageUrl).toBe(`${new URL(ks.storageUrl).origin}/v1/AUTH_${ks.projectId}`);
    const got = await swiftAt(object, ks.userToken);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('hello keystone');
    const bad = await swiftAt(object, `gAAAAA${randomBytes(40).toString('base64url')}`);
    expect(bad.status).toBe(401);
    await bad.arrayBuffer();
    const none = await fetch(object);
    expect(none.status).toBe(401);
    await none.arrayBuffer();
  });

  it("Trove 18's lookup by hand: the token method scoped to the project id gives a catalog whose object-store is the storage URL", async () => {
    const r = await keystoneToken({ identity: { methods: ['token'], token: { id: ks.userToken } }, scope: { project: { id: ks.projectId } } });
    expect(r.status).toBe(201);
    expect(r.objectStore).toBe(ks.storageUrl);
    const got = await swiftAt(object, r.token!);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('hello keystone');
  });

  it("an application credential gets a token whose catalog has the object-store endpoint, and it reads the object; a wrong secret gets 401", async () => {
    const r = await keystoneToken({ identity: { methods: ['application_credential'], application_credential: { id: ks.appCredId, secret: ks.appCredSecret } } });
    expect(r.status).toBe(201);
    expect(r.projectId).toBe(ks.projectId);
    expect(r.token).toBeTruthy();
    expect(r.token).not.toBe(ks.userToken);
    expect(r.objectStore).toBe(ks.storageUrl);
    const got = await swiftAt(r.objectStore!.concat(`/${container}/hello.txt`), r.token!);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('hello keystone');
    // One character off. (Keystone 22 hashes the secret with bcrypt, which reads only its first 72 bytes: the
    // 86-character secret with a character appended, or changed past the 72nd, is still accepted.)
    const off = (i: number) => `${ks.appCredSecret.slice(0, i)}${ks.appCredSecret[i] === 'A' ? 'B' : 'A'}${ks.appCredSecret.slice(i + 1)}`;
    const wrong = await keystoneToken({ identity: { methods: ['application_credential'], application_credential: { id: ks.appCredId, secret: off(3) } } });
    expect(wrong.status).toBe(401);
    expect(wrong.token).toBeNull();
  });

  it("a token of another project cannot read or write the project's account, though it works in its own", async () => {
    const r = await keystoneToken({
      identity: { methods: ['password'], password: { user: { id: ks.userId, password: ks.password } } },
      scope: { project: { id: ks.otherProjectId } },
    });
    expect(r.status).toBe(201);
    expect(r.projectId).toBe(ks.otherProjectId);
    const otherUrl = `${new URL(ks.storageUrl).origin}/v1/AUTH_${ks.otherProjectId}`;
    expect(r.objectStore).toBe(otherUrl);
    // keystoneauth knows the token (valid, member) but not for this account: 403, not 401.
    for (const [method, url] of [['GET', object], ['HEAD', ks.storageUrl], ['PUT', `${ks.storageUrl}/${container}/intruder.txt`]] as const) {
      const res = await swiftAt(url, r.token!, { method, ...(method === 'PUT' ? { body: 'x' } : {}) });
      expect(res.status, `${method} ${url}`).toBe(403);
      await res.arrayBuffer();
    }
    expect((await swiftAt(`${ks.storageUrl}/${container}/intruder.txt`, ks.userToken, { method: 'HEAD' })).status).toBe(404);
    const own = await swiftAt(`${otherUrl}/theirs`, r.token!, { method: 'PUT' });
    expect(own.status).toBe(201);
  });
});

describe('the backup service finds Swift through Keystone', () => {
  it("Trove 18's way: the caller's token scoped to its project, object-store from Keystone's catalog (no catalog, no swift_url sent)", async () => {
    const container = `bk_token_${randomUUID().slice(0, 8)}`;
    const { svc, updates } = service({ authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: null }, container);
    await backupAndRestore(svc, updates, container, { auth_token: ks.userToken, project_id: ks.projectId });
    expect(updates[0]).toMatchObject({ state: 'BUILDING', backup_type: 'full' });
  });

  it("a token Keystone does not know fails the backup with Keystone's answer, and the token is not in the message", async () => {
    const container = `bk_badtoken_${randomUUID().slice(0, 8)}`;
    const { svc, updates } = service({ authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: null }, container);
    const bogus = `gAAAAA${randomBytes(40).toString('base64url')}`;
    const err = await svc.create({ id: randomUUID() }, { auth_token: bogus, project_id: ks.projectId }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestError);
    expect((err as GuestError).cause).toBeInstanceOf(KeystoneError);
    // Keystone 22 answers an unknown fernet token with 404 "Could not recognize Fernet token" (401 for a bad password).
    expect((err as Error).message).toMatch(new RegExp(`refused the caller's token for project ${ks.projectId}: 40[14] `));
    expect((err as Error).message).not.toContain(bogus);
    expect(updates.at(-1)).toMatchObject({ state: 'FAILED', success: false });
  });

  it('follows parent-location metadata back to the full backup, oldest first, and stops a cycle', async () => {
    const container = `bk_chain_${randomUUID().slice(0, 8)}`;
    const { svc } = service({ authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: null }, container);
    expect((await swiftAt(`${ks.storageUrl}/${container}`, ks.userToken, { method: 'PUT' })).status).toBe(201);
    const url = (n: string) => `${ks.storageUrl}/${container}/${n}`;
    const put = async (name: string, parent?: { name: string; checksum: string }) => {
      const headers: Record<string, string> = parent ? { 'X-Object-Meta-Parent-Location': url(parent.name), 'X-Object-Meta-Parent-Checksum': parent.checksum } : {};
      expect((await swiftAt(url(name), ks.userToken, { method: 'PUT', body: name, headers })).status).toBe(201);
    };
    await put('full.xbstream.gz');
    await put('inc1.xbstream.gz', { name: 'full.xbstream.gz', checksum: 'c-full' });
    await put('inc2.xbstream.gz', { name: 'inc1.xbstream.gz', checksum: 'c-inc1' });
    const fetcher = svc.fetcher({ auth_token: ks.userToken, project_id: ks.projectId }, null);
    expect(await fetcher.chain(url('inc2.xbstream.gz'), 'c-inc2', ctx())).toEqual([
      { location: url('full.xbstream.gz'), checksum: 'c-full' },
      { location: url('inc1.xbstream.gz'), checksum: 'c-inc1' },
      { location: url('inc2.xbstream.gz'), checksum: 'c-inc2' },
    ]);
    expect(await fetcher.chain(url('full.xbstream.gz'), null, ctx())).toEqual([{ location: url('full.xbstream.gz'), checksum: null }]);
    // Two backups naming each other as parent: refused after a bounded walk, not followed forever.
    await put('a.xbstream.gz', { name: 'b.xbstream.gz', checksum: 'c-b' });
    await put('b.xbstream.gz', { name: 'a.xbstream.gz', checksum: 'c-a' });
    await expect(fetcher.chain(url('a.xbstream.gz'), null, ctx())).rejects.toThrow(/backup chain too long/);
  });

  it("the agent's application credential: its own token and catalog, with a request carrying no token", async () => {
    const container = `bk_appcred_${randomUUID().slice(0, 8)}`;
    const { svc, updates } = service({ authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: { id: ks.appCredId, secret: ks.appCredSecret } }, container);
    await backupAndRestore(svc, updates, container, {});
  });

  it("an agent killed mid-backup: at the next start conductor learns FAILED and the backup's segments are deleted with the agent's credential", async () => {
    const container = `bk_crash_${randomUUID().slice(0, 8)}`;
    const journal = join(tmp, `journal-${randomUUID().slice(0, 8)}`);
    const id = randomUUID();
    // 8 MB: enough for the parallel gzip to pass blocks on (it holds up to four) and fill segments.
    const big = join(tmp, 'big.bin');
    writeFileSync(big, randomBytes(8_000_000));
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../fixtures/backup/backup-then-hang.ts')], {
      env: { ...process.env, GA_SOURCE: big, GA_CONTAINER: container, GA_AUTH_URL: ks.authUrl, GA_APP_CRED_ID: ks.appCredId, GA_APP_CRED_SECRET: ks.appCredSecret, GA_JOURNAL: journal, GA_BACKUP_ID: id },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const listing = async (): Promise<string[]> => {
      const res = await swiftAt(`${ks.storageUrl}/${container}?format=json`, ks.userToken);
      return res.status === 200 ? ((await res.json()) as { name: string }[]).map((o) => o.name) : (await res.arrayBuffer(), []);
    };
    try {
      // Segments of 1 MiB are stored while the producer hangs after its 8 MB.
      const deadline = Date.now() + 30_000;
      while ((await listing()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const stored = await listing();
      expect(stored.length, stderr).toBeGreaterThanOrEqual(2);
      expect(stored.every((n) => n.startsWith(id))).toBe(true);
      expect(readdirSync(journal)).toHaveLength(1);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // The next start, with another object of the container that is not the backup's.
    expect((await swiftAt(`${ks.storageUrl}/${container}/${id}-other`, ks.userToken, { method: 'PUT', body: 'keep' })).status).toBe(201);
    const updates: Array<[string, Record<string, unknown>]> = [];
    const next = createBackupService({
      datastore, updateBackup: async (backupId, fields) => void updates.push([backupId, fields]), usedGb: async () => 0, container, segmentMaxSize: MiB, swiftUrl: null,
      keystone: { authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: { id: ks.appCredId, secret: ks.appCredSecret } },
      datastoreVersion: '10.11', encryptionKey: null, compression: 'gzip', journalDir: journal,
    });
    expect(await next.recoverInterrupted(ctx())).toEqual([id]);
    expect(updates).toEqual([[id, { state: 'FAILED', success: false }]]);
    expect(await listing()).toEqual([`${id}-other`]);
    expect(readdirSync(journal)).toEqual([]);
    expect(await next.recoverInterrupted(ctx())).toEqual([]);
  });

  it('a wrong application credential secret fails the backup with a KeystoneError that does not contain the secret', async () => {
    const container = `bk_badcred_${randomUUID().slice(0, 8)}`;
    const secret = `wrong-${randomBytes(16).toString('hex')}`;
    const { svc, updates } = service({ authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: { id: ks.appCredId, secret } }, container);
    const err = await svc.create({ id: randomUUID() }, {}, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestError);
    const cause = (err as GuestError).cause;
    expect(cause).toBeInstanceOf(KeystoneError);
    for (const m of [(err as Error).message, (cause as Error).message]) {
      expect(m).toContain(`application credential ${ks.appCredId}: 401`);
      expect(m).not.toContain(secret);
      expect(m).not.toContain(ks.appCredSecret);
    }
    expect(updates.at(-1)).toMatchObject({ state: 'FAILED', success: false });
    // Nothing was stored in the project for it.
    const list = await swiftAt(`${ks.storageUrl}/${container}`, ks.userToken);
    expect(list.status).toBe(404);
    await list.arrayBuffer();
  });
});
