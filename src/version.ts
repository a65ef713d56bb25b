/**
 * Datastore version names as Trove's operators write them ("10.11", "15",
 * "7.0.15", "10.11-jammy") against the version a server binary reports.
 */

/** True when every number of `name`'s leading dotted version equals the installed version's. */
export function versionMatches(name: string, installed: string): boolean {
  const want = /^\d+(?:\.\d+)*/.exec(name.trim())?.[0];
  if (!want) return false;
  const have = installed.split('.');
  return want.split('.').every((part, i) => have[i] !== undefined && Number(part) === Number(have[i]));
}
