import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { StatusReporter } from '../../src/heartbeat.ts';
import type { ServiceStatus } from '../../src/datastore.ts';
import { versionMatches } from '../../src/version.ts';

const log = pino({ level: 'silent' });
const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('a held heartbeat status (upgrade)', () => {
  it('is reported at once and in place of the probe until released, then the probe reports again', async () => {
    const sent: string[] = [];
    let real: ServiceStatus = 'healthy';
    const r = new StatusReporter({ conductor: { heartbeat: async (s) => void sent.push(s) }, probe: { status: async () => real }, isPrepared: () => true, reportIntervalMs: 40, checkIntervalMs: 10, log });
    r.start();
    await until(() => sent.includes('healthy'));
    r.hold('upgrading');
    real = 'shutdown'; // the server restarting underneath
    await new Promise((res) => setTimeout(res, 120));
    const during = sent.slice(sent.indexOf('upgrading'));
    expect(during.length).toBeGreaterThan(1);
    expect(new Set(during)).toEqual(new Set(['upgrading']));
    real = 'healthy';
    r.release();
    await until(() => sent.at(-1) === 'healthy');
    await r.stop(false);
  });

  it('with a time limit, gives way to the probe once it has passed', async () => {
    const sent: string[] = [];
    const r = new StatusReporter({ conductor: { heartbeat: async (s) => void sent.push(s) }, probe: { status: async () => 'healthy' }, isPrepared: () => true, reportIntervalMs: 1000, checkIntervalMs: 10, log });
    r.start();
    r.hold('failed to spawn', 60);
    expect(sent[0]).toBe('failed to spawn');
    await until(() => sent.at(-1) === 'healthy');
    await r.stop(false);
  });

  it('a failure report ends early when a new operation begins; an open-ended hold does not', async () => {
    const sent: string[] = [];
    const r = new StatusReporter({ conductor: { heartbeat: async (s) => void sent.push(s) }, probe: { status: async () => 'healthy' }, isPrepared: () => true, reportIntervalMs: 60_000, checkIntervalMs: 10, log });
    r.start();
    await until(() => sent.at(-1) === 'healthy');
    r.hold('failed to spawn', 60_000);
    await new Promise((res) => setTimeout(res, 50));
    expect(sent.at(-1)).toBe('failed to spawn');
    r.endFailureReport();
    await until(() => sent.at(-1) === 'healthy', 500);
    r.hold('upgrading');
    r.endFailureReport();
    await new Promise((res) => setTimeout(res, 50));
    expect(sent.at(-1)).toBe('upgrading');
    await r.stop(false);
  });
});

describe('datastore version names against the installed server', () => {
  it.each([
    ['10.11', '10.11.19', true],
    ['10.11.19', '10.11.19', true],
    ['10.11-bookworm', '10.11.19', true],
    ['10', '10.11.19', true],
    ['10.6', '10.11.19', false],
    ['11.4', '10.11.19', false],
    ['10.11.20', '10.11.19', false],
    ['latest', '10.11.19', false],
    ['', '10.11.19', false],
    ['15', '15.14', true],
  ])('%s on %s: %s', (name, installed, want) => {
    expect(versionMatches(name, installed)).toBe(want);
  });
});
