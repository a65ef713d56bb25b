import { describe, expect, it } from 'vitest';
import { authBody, endpointFromCatalog, tokensUrl } from '../../../src/backup/keystone.ts';

const v3 = [
  { type: 'identity', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: 'http://k/v3' }] },
  {
    type: 'object-store',
    endpoints: [
      { interface: 'internal', region_id: 'RegionOne', url: 'http://internal/v1/AUTH_p' },
      { interface: 'public', region_id: 'RegionOne', region: 'RegionOne', url: 'http://one/v1/AUTH_p' },
      { interface: 'public', region_id: 'RegionTwo', region: 'RegionTwo', url: 'http://two/v1/AUTH_p' },
    ],
  },
];

describe('Keystone catalog', () => {
  it('picks the public object-store endpoint of the configured region', () => {
    expect(endpointFromCatalog(v3, { region: 'RegionTwo' })).toBe('http://two/v1/AUTH_p');
    expect(endpointFromCatalog(v3, { region: 'RegionOne' })).toBe('http://one/v1/AUTH_p');
  });

  it('falls back to any public endpoint when no region matches or none is set', () => {
    expect(endpointFromCatalog(v3, { region: 'Elsewhere' })).toBe('http://one/v1/AUTH_p');
    expect(endpointFromCatalog(v3)).toBe('http://one/v1/AUTH_p');
  });

  it('reads the v2 shape Trove contexts may carry, and answers null without an object store', () => {
    expect(endpointFromCatalog([{ type: 'object-store', endpoints: [{ region: 'R', publicURL: 'http://v2/v1/AUTH_p', internalURL: 'x' }] }])).toBe('http://v2/v1/AUTH_p');
    expect(endpointFromCatalog([{ type: 'identity', endpoints: [{ interface: 'public', url: 'http://k' }] }])).toBeNull();
    expect(endpointFromCatalog(null)).toBeNull();
    expect(endpointFromCatalog([{ type: 'object-store' }])).toBeNull();
  });
});

describe('Keystone requests', () => {
  it('posts to <auth_url>/auth/tokens, adding /v3 to an unversioned root', () => {
    expect(tokensUrl('http://k:5000/v3')).toBe('http://k:5000/v3/auth/tokens');
    expect(tokensUrl('http://k:5000/v3/')).toBe('http://k:5000/v3/auth/tokens');
    expect(tokensUrl('http://k/identity')).toBe('http://k/identity/v3/auth/tokens');
  });

  it('builds the bodies keystoneauth sends for v3.Token and application credentials', () => {
    expect(authBody({ kind: 'token', token: 'T', projectId: 'P' })).toEqual({
      auth: { identity: { methods: ['token'], token: { id: 'T' } }, scope: { project: { id: 'P' } } },
    });
    expect(authBody({ kind: 'application_credential', id: 'I', secret: 'S' })).toEqual({
      auth: { identity: { methods: ['application_credential'], application_credential: { id: 'I', secret: 'S' } } },
    });
  });
});
