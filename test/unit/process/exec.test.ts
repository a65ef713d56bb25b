// Real child processes (sh), not mocks: what a failed program's error says.
import { describe, expect, it } from 'vitest';
import { ProcessError } from '../../../src/errors.ts';
import { exec } from '../../../src/process/exec.ts';

const failure = async (script: string): Promise<ProcessError> => {
  const err = await exec('/bin/sh', ['-c', script]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ProcessError);
  return err as ProcessError;
};

describe("a failed program's error", () => {
  it('carries the last lines of its stderr', async () => {
    expect((await failure('echo out; echo one >&2; echo two >&2; exit 3')).message).toBe('/bin/sh exited with code 3: one | two');
  });

  it('carries its stdout when it said nothing on stderr (shell scripts echo their reasons)', async () => {
    expect((await failure('echo "Neither host x nor localhost could be looked up"; exit 1')).message).toBe('/bin/sh exited with code 1: Neither host x nor localhost could be looked up');
  });

  it('says only how it ended when it said nothing', async () => {
    expect((await failure('exit 2')).message).toBe('/bin/sh exited with code 2');
  });
});
