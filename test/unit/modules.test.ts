import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createModuleManager } from '../../src/modules.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ga-modules-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const mod = (name: string, contents: string, extra: Record<string, unknown> = {}) => ({ module: { id: `id-${name}`, name, type: 'ping', contents: Buffer.from(contents).toString('base64'), ...extra } });

describe('module manager', () => {
  it('loads only the driver types module_types allows', () => {
    const m = createModuleManager({ dir: join(dir, 'm'), datastoreManager: 'mysql', moduleTypes: ['new_relic_license'], log });
    expect(() => m.apply([mod('a', 'message=x')])).toThrow("No driver implemented for module type 'ping'");
  });

  it('reads the ping contents as Trove\'s KeyValueCodec does (comments, booleans, untrimmed value)', () => {
    const m = createModuleManager({ dir: join(dir, 'm'), datastoreManager: 'mysql', moduleTypes: ['PING'], log, now: () => '2026-12-03 22:00:00.00' });
    const [a, b, c] = m.apply([mod('a', '  # c\n\nMessage = hi there # trailing\n'), mod('b', 'message=TRUE'), mod('c', 'x=1\nmessage=')]);
    expect(a).toMatchObject({ status: 'OK', message: ' hi there ' });
    expect(b).toMatchObject({ status: 'OK', message: true });
    expect(c).toMatchObject({ status: 'OK', message: '' });
  });

  it('keeps the given order when the modules carry no ordering, and orders by apply_order when only that is there', () => {
    const m = createModuleManager({ dir: join(dir, 'm'), datastoreManager: 'mysql', moduleTypes: ['ping'], log });
    expect(m.apply([mod('z', 'message=1'), mod('a', 'message=2')]).map((r) => r['name'])).toEqual(['z', 'a']);
    expect(m.apply([mod('z', 'message=1', { apply_order: 3 }), mod('a', 'message=2', { apply_order: 1 })]).map((r) => r['name'])).toEqual(['a', 'z']);
  });

  it('a module for all datastores, or for this one, applies; is_admin falls back to Trove\'s rule', () => {
    const m = createModuleManager({ dir: join(dir, 'm'), datastoreManager: 'postgresql', moduleTypes: ['ping'], log });
    const [a, b] = m.apply([mod('a', 'message=1', { datastore: 'postgresql', tenant: 't1', visible: true, auto_apply: false }), mod('b', 'message=2', { datastore: null })]);
    expect(a).toMatchObject({ status: 'OK', is_admin: false, tenant: 't1' });
    expect(b).toMatchObject({ status: 'OK', is_admin: true, datastore: 'all' });
  });
});
