/**
 * Backups Trove 18's own backup tool made, kept as data so that every test
 * run (CI has no checkout of openstack/trove) restores what that tool writes.
 *
 * test/fixtures/backup/trove-18/index.json lists each backup: its object
 * name, Trove's checksum, the X-Object-Meta-* headers the tool set (a
 * parent's location with its storage URL replaced by `{storage}`), the
 * encryption key it was made with, if any, and the rows it holds; the object's
 * bytes are the file of the same name beside it. trove-tool.test.ts writes
 * them when GA_TROVE_SRC and GA_TROVE_CAPTURE are both set (fetched back from
 * Swift right after the tool stored them); replay() puts them into another
 * Swift as the tool left them there.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'backup', 'trove-18');
/** The directory to record Trove's backups into, or null (then nothing is recorded). */
export const CAPTURE_DIR: string | null = process.env['GA_TROVE_CAPTURE'] || null;
/** The backup encryption key of the recorded encrypted backup (a test key, nothing else uses it). */
export const FIXTURE_KEY = 'trove-18-fixture-key';
const PLACEHOLDER = '{storage}';

export interface RecordedBackup {
  /** What the tests call it: mariadb-full, mariadb-incremental, … */
  name: string;
  /** The object's name in the container (Trove's `<id>.xbstream.gz`, …). */
  object: string;
  checksum: string;
  /** X-Object-Meta-* headers without the prefix, lower-case, as swiftclient reads them. */
  meta: Record<string, string>;
  key: string | null;
  rows: Array<{ id: number; name: string }>;
  /** How it was made (tool, datastore version, date). */
  made: string;
}

const indexFile = (dir: string) => join(dir, 'index.json');

export function recorded(dir = FIXTURES): RecordedBackup[] {
  return existsSync(indexFile(dir)) ? (JSON.parse(readFileSync(indexFile(dir), 'utf8')) as RecordedBackup[]) : [];
}

const hex = (b: Buffer) => createHash('md5').update(b).digest('hex');

/**
 * Fetches the object at `location` back from Swift and records it in CAPTURE_DIR
 * under `name` (replacing an earlier record of that name); no-op without CAPTURE_DIR.
 */
export async function capture(
  name: string,
  location: string,
  checksum: string,
  at: { storageUrl: string; token: string },
  extra: Pick<RecordedBackup, 'key' | 'rows' | 'made'>,
): Promise<void> {
  if (!CAPTURE_DIR) return;
  const res = await fetch(location, { headers: { 'X-Auth-Token': at.token } });
  if (!res.ok) throw new Error(`GET ${location}: ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (hex(body) !== checksum) throw new Error(`${location}: md5 ${hex(body)} is not Trove's checksum ${checksum} (a multi-segment backup is not recorded)`);
  const meta: Record<string, string> = {};
  for (const [k, v] of res.headers) {
    const m = /^x-object-meta-(.+)$/.exec(k);
    if (m) meta[m[1]!] = v.split(at.storageUrl).join(PLACEHOLDER);
  }
  const object = location.slice(location.lastIndexOf('/') + 1);
  mkdirSync(CAPTURE_DIR, { recursive: true });
  writeFileSync(join(CAPTURE_DIR, object), body);
  const all = recorded(CAPTURE_DIR).filter((r) => r.name !== name);
  all.push({ name, object, checksum, meta, ...extra });
  writeFileSync(indexFile(CAPTURE_DIR), JSON.stringify(all, null, 2) + '\n');
}

/**
 * PUTs a recorded backup into `container` at `storageUrl` with the headers the tool set
 * (its parent's location pointing at this Swift); returns what Trove would hand the guest.
 */
export async function replay(r: RecordedBackup, at: { storageUrl: string; token: string }, container = 'database_backups'): Promise<{ location: string; checksum: string }> {
  const headers = { 'X-Auth-Token': at.token };
  const made = await fetch(`${at.storageUrl}/${container}`, { method: 'PUT', headers });
  if (!made.ok) throw new Error(`PUT container ${container}: ${made.status}`);
  const meta = Object.fromEntries(Object.entries(r.meta).map(([k, v]) => [`X-Object-Meta-${k}`, v.split(PLACEHOLDER).join(at.storageUrl)]));
  const location = `${at.storageUrl}/${container}/${r.object}`;
  const res = await fetch(location, { method: 'PUT', headers: { ...headers, ...meta }, body: readFileSync(join(FIXTURES, r.object)) });
  if (res.status !== 201) throw new Error(`PUT ${location}: ${res.status}`);
  const etag = res.headers.get('etag')?.replace(/"/g, '');
  if (etag !== r.checksum) throw new Error(`${r.object}: stored with ETag ${etag}, recorded checksum ${r.checksum}`);
  return { location, checksum: r.checksum };
}
