import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { StatusReporter } from '../../src/heartbeat.ts';
import { PrepareMarkers } from '../../src/markers.ts';
import { PrepareService } from '../../src/prepare.ts';
import type { PrepareRequest } from '../../src/datastore.ts';
import { createFakeDatastore } from '../fakes/datastore.ts';
import { testDir } from '../tmp.ts';

const log = pino({ level: 'silent' });
const req: PrepareRequest = {
  memoryMb: 512, packages: [], databases: [], users: [], devicePath: null, mountPoint: null, backupInfo: null, configContents: null,
  rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: '10.11',
};

function setup() {
  const dir = testDir('prep-');
  const ds = createFakeDatastore(dir);
  const markers = new PrepareMarkers(dir);
  const sent: string[] = [];
  const reporter = new StatusReporter({ conductor: { heartbeat: async (s) => void sent.push(s) }, probe: ds.status, isPrepared: () => markers.completed, reportIntervalMs: 60_000, log });
  return { ds, markers, sent, service: new PrepareService({ datastore: ds, markers, reporter, volumes: null }) };
}
const ctx = { log, signal: new AbortController().signal };

describe('prepare orchestration', () => {
  it('reports building, runs the datastore, writes the end marker, reports the real status', async () => {
    const { ds, markers, sent, service } = setup();
    await service.prepare(req, ctx);
    expect(sent).toEqual(['building', 'healthy']);
    expect(markers.completed).toBe(true);
    expect(ds.prepared[0]!.mountPoint).toBe(ds.mountPoint);
  });
  it('runs once: a second prepare is refused and the datastore is not touched', async () => {
    const { ds, service } = setup();
    await service.prepare(req, ctx);
    await expect(service.prepare(req, ctx)).rejects.toThrow(/already ran/);
    expect(ds.prepared).toHaveLength(1);
  });
  it('a failure reports failed to spawn and leaves no end marker', async () => {
    const { ds, markers, sent, service } = setup();
    ds.failPrepareWith = new Error('mysqld would not start: InnoDB: cannot allocate memory');
    await expect(service.prepare(req, ctx)).rejects.toThrow(/cannot allocate/);
    expect(sent).toEqual(['building', 'failed to spawn']);
    expect(markers.started).toBe(true);
    expect(markers.completed).toBe(false);
  });
  it('a cluster member ends as instance ready', async () => {
    const { sent, service } = setup();
    await service.prepare({ ...req, clusterConfig: { id: 'c1' } }, ctx);
    expect(sent).toEqual(['building', 'instance ready']);
  });
});

describe('rebuild orchestration', () => {
  const rb = { dsVersion: '10.11', configContents: '[mysqld]\n', overrides: null };
  it('a datastore without rebuild refuses it and reports nothing', async () => {
    const { ds, sent, markers, service } = setup();
    delete (ds.lifecycle as { rebuild?: unknown }).rebuild;
    await expect(service.rebuild(rb, ctx)).rejects.toThrow(/rebuild/);
    expect(sent).toEqual([]);
    expect(markers.started).toBe(false);
  });
  it('reports building, then the real status; the guest counts as prepared; a failure reports failed to spawn', async () => {
    const { ds, sent, markers, service } = setup();
    const seen: unknown[] = [];
    ds.lifecycle.rebuild = async (r) => {
      seen.push(r);
      ds.setStatus('healthy');
    };
    await service.rebuild(rb, ctx);
    expect(seen).toEqual([{ ...rb, mountPoint: ds.mountPoint }]);
    expect(sent).toEqual(['building', 'healthy']);
    expect(markers.completed).toBe(true);
    const f = setup();
    f.ds.lifecycle.rebuild = async () => { throw new Error('no data directory on the volume'); };
    await expect(f.service.rebuild(rb, ctx)).rejects.toThrow(/no data directory/);
    expect(f.sent).toEqual(['building', 'failed to spawn']);
    expect(f.markers.completed).toBe(false);
  });
});

describe('status reporter', () => {
  it('sends nothing before prepare unless forced, then on change and every interval', async () => {
    const dir = testDir('hb-');
    const ds = createFakeDatastore(dir);
    let prepared = false;
    const sent: string[] = [];
    const r = new StatusReporter({ conductor: { heartbeat: async (s) => void sent.push(s) }, probe: ds.status, isPrepared: () => prepared, reportIntervalMs: 200, checkIntervalMs: 20, log });
    r.start();
    await new Promise((res) => setTimeout(res, 80));
    expect(sent).toEqual([]);
    prepared = true;
    ds.setStatus('healthy');
    await new Promise((res) => setTimeout(res, 80));
    expect(sent).toEqual(['healthy']);
    ds.setStatus('shutdown');
    await new Promise((res) => setTimeout(res, 80));
    expect(sent).toEqual(['healthy', 'shutdown']);
    await new Promise((res) => setTimeout(res, 300));
    expect(sent.length).toBeGreaterThanOrEqual(3);
    await r.stop(true);
    const n = sent.length;
    await new Promise((res) => setTimeout(res, 80));
    expect(sent.length).toBe(n);
    expect(sent.at(-1)).toBe('shutdown');
  });
});
