/**
 * /etc/fstab editing as pure text functions. Trove's VolumeMountPoint.write_to_fstab
 * appends `<device>\t<mount point>\t<fstype>\t<options>\t0\t0` (by device path,
 * not UUID) every time; we write the same line but only once per mount point,
 * so a re-run prepare does not pile up duplicates.
 */

export interface FstabEntry {
  spec: string;
  file: string;
  vfstype: string;
  options: string;
}

/** fstab escapes whitespace and backslash as octal (fstab(5)). */
export function escapeFstabField(s: string): string {
  return s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function unescapeFstabField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function formatFstabLine(e: FstabEntry): string {
  return [e.spec, e.file, e.vfstype, e.options].map(escapeFstabField).join('\t') + '\t0\t0';
}

/** Mount point (second field) of a non-comment line, unescaped; undefined otherwise. */
export function fstabLineMountPoint(line: string): string | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return undefined;
  const f = t.split(/\s+/)[1];
  return f === undefined ? undefined : unescapeFstabField(f);
}

/** Returns the new content with `e` present exactly once, replacing any line for the same mount point. */
export function upsertFstabEntry(content: string, e: FstabEntry): string {
  const line = formatFstabLine(e);
  const lines = content === '' ? [] : content.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let placed = false;
  for (const l of lines) {
    if (fstabLineMountPoint(l) === e.file) {
      if (!placed) out.push(line);
      placed = true;
    } else {
      out.push(l);
    }
  }
  if (!placed) out.push(line);
  return out.join('\n') + '\n';
}

/** Returns the content without any line for `mountPoint`. */
export function removeFstabEntry(content: string, mountPoint: string): string {
  if (content === '') return content;
  const lines = content.replace(/\n$/, '').split('\n').filter((l) => fstabLineMountPoint(l) !== mountPoint);
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
