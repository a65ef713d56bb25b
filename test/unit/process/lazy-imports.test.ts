/**
 * What the daemon loads before its first answer: execa (~100 ms) and mysql2
 * (~80 ms, ~20 MiB) are loaded on first use, not at start, and Node's own
 * undici (~17 ms) not at all until a fetch. Checked in a fresh
 * Node process that records every module resolved while it imports the daemon
 * and builds a MariaDB datastore's SQL client without querying.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const PROBE = `
import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); seen.push(r.url); return r; } });
await import('./src/main.ts');
const { createMariadbDatastore } = await import('./datastores/mariadb/index.ts');
const { connectSql } = await import('./datastores/mysql/sql.ts');
connectSql({ socketPath: '/nonexistent', user: 'x', password: null });
void createMariadbDatastore;
const before = seen.filter((u) => /node_modules\\/(execa|mysql2)\\//.test(u));
const undici = process.moduleLoadList.filter((m) => m.includes('undici'));
const { exec } = await import('./src/process/exec.ts');
await exec('true', []);
const after = seen.filter((u) => /node_modules\\/execa\\//.test(u));
process.stdout.write(JSON.stringify({ before, after: after.length, undici }));
`;

describe('daemon start', () => {
  it('loads neither execa nor mysql2 until a program runs or a query is made', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], { cwd: ROOT, encoding: 'utf8' });
    const r = JSON.parse(out) as { before: string[]; after: number; undici: string[] };
    expect(r.before).toEqual([]);
    // Nor Node's bundled undici (~17 ms), which an ES import of node:http pulls in.
    expect(r.undici).toEqual([]);
    expect(r.after).toBeGreaterThan(0);
  });
});
