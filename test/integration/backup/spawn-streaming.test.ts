/** spawnStreaming with chatty tools: stderr is streamed as lines and only a bounded tail is kept. */
import { describe, expect, it } from 'vitest';
import { spawnStreaming } from '../../../src/process/exec.ts';
import { ProcessError } from '../../../src/errors.ts';

const CHATTY = `
for (let i = 0; i < 40000; i++) process.stderr.write('Copying ./db/table_' + i + '.ibd to <STDOUT>\\n');
process.stdout.write('x'.repeat(1000));
console.error("The latest check point (for incremental): '12345'");
process.stderr.write('completed OK!');
process.exitCode = Number(process.argv[1] ?? 0);
`;

describe('spawnStreaming', () => {
  it('does not fail or kill a tool writing megabytes of stderr, and hands over every line', async () => {
    const lines: string[] = [];
    const s = await spawnStreaming(process.execPath, ['-e', CHATTY, '0'], { onStderrLine: (l) => lines.push(l) });
    s.child.stdout!.resume();
    await s.done;
    expect(lines).toHaveLength(40002);
    expect(lines.at(-2)).toBe("The latest check point (for incremental): '12345'");
    expect(lines.at(-1)).toBe('completed OK!');
    expect(s.stderrTail().length).toBe(64 * 1024);
  });

  it('reports the end of stderr in the ProcessError of a failing tool', async () => {
    const s = await spawnStreaming(process.execPath, ['-e', CHATTY, '7'], { stderrTailBytes: 4096 });
    s.child.stdout!.resume();
    const e = await s.done.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProcessError);
    expect((e as ProcessError).details.exitCode).toBe(7);
    expect((e as ProcessError).details.stderrTail).toMatch(/completed OK!$/);
  });
});
