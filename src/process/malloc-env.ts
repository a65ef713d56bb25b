/**
 * glibc malloc, tuned for the agent alone. The launchers (bin/guestagent.js,
 * dist/bin/guestagent.js from scripts/build.mjs, the release's bin/guestagent
 * from scripts/build-release.sh) start Node with
 * GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768 before any operator value,
 * and mark it with GUESTAGENT_MALLOC_TUNED=1.
 *
 * Why: with glibc's default, dynamic threshold the main malloc heap grows to
 * ~45 MiB under a burst of RPC traffic (socket reads and buffers of tens of
 * KiB, freed between longer-lived small blocks) and never shrinks: glibc only
 * returns the top of that heap. A fixed 32 KiB threshold maps such blocks on
 * their own and unmaps them when freed (bench:rpc: idle RSS after load 74-76
 * MiB instead of 114-117, CPU per call no worse). glibc reads the tunable
 * once, at process start, so it has to be set by whoever starts Node.
 *
 * The servers and tools the agent starts (mariadbd, postgres, mariabackup,
 * zstd...) must not inherit it: `untuneChildEnv` removes the launcher's entry
 * from the environment children get, leaving any operator setting as it was.
 */
export const MALLOC_TUNABLE = 'glibc.malloc.mmap_threshold=32768';
export const MALLOC_TUNED_MARK = 'GUESTAGENT_MALLOC_TUNED';

export function untuneChildEnv(env: NodeJS.ProcessEnv): void {
  if (env[MALLOC_TUNED_MARK] !== '1') return;
  delete env[MALLOC_TUNED_MARK];
  const entries = (env['GLIBC_TUNABLES'] ?? '').split(':');
  if (entries[0] === MALLOC_TUNABLE) entries.shift();
  const rest = entries.filter((e) => e !== '').join(':');
  if (rest === '') delete env['GLIBC_TUNABLES'];
  else env['GLIBC_TUNABLES'] = rest;
}
