import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MALLOC_TUNABLE, MALLOC_TUNED_MARK, untuneChildEnv } from '../../../src/process/malloc-env.ts';

const ROOT = new URL('../../../', import.meta.url);
const run = promisify(execFile);

describe("the launchers' malloc tuning", () => {
  it('is removed from what children inherit, leaving an operator value as it was', () => {
    const only: NodeJS.ProcessEnv = { GLIBC_TUNABLES: `${MALLOC_TUNABLE}:`, [MALLOC_TUNED_MARK]: '1', PATH: '/bin' };
    untuneChildEnv(only);
    expect(only).toEqual({ PATH: '/bin' });
    const withOperator: NodeJS.ProcessEnv = { GLIBC_TUNABLES: `${MALLOC_TUNABLE}:glibc.malloc.arena_max=2`, [MALLOC_TUNED_MARK]: '1' };
    untuneChildEnv(withOperator);
    expect(withOperator).toEqual({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
    // Not started by our launcher: nothing is touched.
    const operator: NodeJS.ProcessEnv = { GLIBC_TUNABLES: MALLOC_TUNABLE };
    untuneChildEnv(operator);
    expect(operator).toEqual({ GLIBC_TUNABLES: MALLOC_TUNABLE });
  });

  it('is what every launcher sets, before any operator value', async () => {
    for (const f of ['bin/guestagent.js', 'scripts/build.mjs', 'scripts/build-release.sh']) {
      const text = readFileSync(new URL(f, ROOT), 'utf8');
      expect(text, f).toMatch(new RegExp(`GLIBC_TUNABLES="?${MALLOC_TUNABLE.replaceAll('.', '\\.')}`));
      expect(text, f).toContain(`${MALLOC_TUNED_MARK}=1`);
    }
    // The development launcher's shebang as the kernel runs it (env -S), with and without an operator value.
    const shebang = readFileSync(new URL('bin/guestagent.js', ROOT), 'utf8').split('\n')[0]!.slice(2).split(' ');
    const env = (extra: Record<string, string>) => run(shebang[0]!, [...shebang.slice(1, -1), 'printenv', 'GLIBC_TUNABLES'], { env: { PATH: '/usr/bin:/bin', ...extra } });
    expect((await env({})).stdout.trim()).toBe(`${MALLOC_TUNABLE}:`);
    expect((await env({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).stdout.trim()).toBe(`${MALLOC_TUNABLE}:glibc.malloc.arena_max=2`);
  });
});
