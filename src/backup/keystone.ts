/**
 * Keystone v3, only as far as the guest needs it to find Swift: a token
 * (with its service catalog) from either the caller's own token scoped to
 * its project (what Trove 18's backup tool does with `--os-token
 * --os-auth-url --os-tenant-id`: keystoneauth's v3.Token) or an application
 * credential from the agent's configuration, and the object-store endpoint
 * in that catalog. Secrets go only into request bodies and the
 * X-Subject-Token a response carries; they are never in errors or logs.
 */
import { AbortedError, KeystoneError } from '../errors.ts';

/** How the agent proves itself to Keystone. */
export type KeystoneMethod =
  | { kind: 'token'; token: string; projectId: string }
  | { kind: 'application_credential'; id: string; secret: string };

export interface KeystoneToken {
  token: string;
  /** ms since the epoch; Infinity when Keystone gives no expiry. */
  expiresAt: number;
  catalog: unknown;
  projectId: string | null;
}

/** `<auth_url>/auth/tokens`, with /v3 added when auth_url names the unversioned root, as keystoneauth's discovery would find it. */
export function tokensUrl(authUrl: string): string {
  const base = authUrl.replace(/\/+$/, '');
  return `${/\/v3$/.test(base) ? base : `${base}/v3`}/auth/tokens`;
}

/** The v3 request body keystoneauth sends for the method. */
export function authBody(m: KeystoneMethod): unknown {
  if (m.kind === 'token') {
    return { auth: { identity: { methods: ['token'], token: { id: m.token } }, scope: { project: { id: m.projectId } } } };
  }
  return { auth: { identity: { methods: ['application_credential'], application_credential: { id: m.id, secret: m.secret } } } };
}

/** POST /v3/auth/tokens. Throws KeystoneError with Keystone's status and reason (never the secret). */
export async function authenticate(authUrl: string, m: KeystoneMethod, opts: { signal?: AbortSignal | undefined; timeoutMs?: number } = {}): Promise<KeystoneToken> {
  const url = tokensUrl(authUrl);
  const what = m.kind === 'token' ? `the caller's token for project ${m.projectId}` : `application credential ${m.id}`;
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? 30_000), ...(opts.signal ? [opts.signal] : [])]);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(authBody(m)), signal });
  } catch (e) {
    if (opts.signal?.aborted) throw new AbortedError(`aborted: Keystone ${url}`, { cause: e });
    throw new KeystoneError(`Keystone at ${url} could not be reached to authenticate ${what}: ${(e as Error).message}`, { cause: e });
  }
  const text = await res.text();
  if (res.status !== 201 && res.status !== 200) {
    let reason = '';
    try {
      reason = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? '');
    } catch {
      reason = text.slice(0, 200);
    }
    throw new KeystoneError(`Keystone at ${url} refused ${what}: ${res.status}${reason ? ` ${reason}` : ''}`);
  }
  const token = res.headers.get('x-subject-token');
  if (!token) throw new KeystoneError(`Keystone at ${url} answered ${res.status} without X-Subject-Token`);
  let body: { token?: { expires_at?: unknown; catalog?: unknown; project?: { id?: unknown } } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new KeystoneError(`Keystone at ${url} answered ${res.status} with a body that is not JSON`);
  }
  const expires = typeof body.token?.expires_at === 'string' ? Date.parse(body.token.expires_at) : NaN;
  return {
    token,
    expiresAt: Number.isFinite(expires) ? expires : Infinity,
    catalog: body.token?.catalog ?? null,
    projectId: typeof body.token?.project?.id === 'string' ? body.token.project.id : null,
  };
}

/**
 * The public URL of a service in a Keystone catalog, v3 (`interface`/`url`)
 * or v2 (`publicURL`) shaped, as Trove's context carries either. With a
 * region, an endpoint of that region wins; without a match any public one does.
 */
export function endpointFromCatalog(catalog: unknown, opts: { type?: string; region?: string | null } = {}): string | null {
  if (!Array.isArray(catalog)) return null;
  const type = opts.type ?? 'object-store';
  const found: Array<{ url: string; region: string | null }> = [];
  for (const svc of catalog as Array<Record<string, unknown>>) {
    if (svc?.['type'] !== type || !Array.isArray(svc['endpoints'])) continue;
    for (const ep of svc['endpoints'] as Array<Record<string, unknown>>) {
      const region = typeof ep['region_id'] === 'string' ? ep['region_id'] : typeof ep['region'] === 'string' ? ep['region'] : null;
      if (typeof ep['publicURL'] === 'string') found.push({ url: ep['publicURL'], region });
      else if (ep['interface'] === 'public' && typeof ep['url'] === 'string') found.push({ url: ep['url'], region });
    }
  }
  if (opts.region) {
    const inRegion = found.find((e) => e.region === opts.region);
    if (inRegion) return inRegion.url;
  }
  return found[0]?.url ?? null;
}

/**
 * A token kept for the agent's application credential: fetched on first
 * use, fetched again when less than `marginMs` of it is left (a backup that
 * runs for hours gets a fresh one for each Swift request it starts) or when
 * Swift refused it. One request at a time goes to Keystone.
 */
export function applicationCredentialSession(authUrl: string, cred: { id: string; secret: string }, marginMs = 10 * 60_000) {
  let cached: KeystoneToken | null = null;
  let inflight: Promise<KeystoneToken> | null = null;
  return {
    token(opts: { refresh?: boolean } = {}): Promise<KeystoneToken> {
      if (!opts.refresh && cached && cached.expiresAt - Date.now() > marginMs) return Promise.resolve(cached);
      inflight ??= authenticate(authUrl, { kind: 'application_credential', ...cred })
        .then((t) => (cached = t))
        .finally(() => {
          inflight = null;
        });
      return inflight;
    },
  };
}

export type ApplicationCredentialSession = ReturnType<typeof applicationCredentialSession>;
