/** Parsing /proc/self/mountinfo (proc(5)): field 5 is the mount point, after " - " come fstype and source. */

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const mp = left.split(' ')[4];
    const [fsType, source] = right.split(' ');
    if (mp === undefined || fsType === undefined || source === undefined) continue;
    out.push({ mountPoint: unescapeOctal(mp), fsType, source: unescapeOctal(source) });
  }
  return out;
}
