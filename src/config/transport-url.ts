/**
 * oslo.messaging transport_url parsing (transport.py TransportURL.parse) plus
 * the rabbit driver's reading of it (impl_rabbit Connection): hosts split on
 * ",", `user:pass@` percent-decoded per host (a host without credentials does
 * NOT inherit them from another host: oslo only warns), port 5672 when absent,
 * vhost = decoded path without its leading "/" with kombu's "/" when empty, and
 * no host at all meaning guest:guest@localhost:5672. oslo.messaging 14's rabbit
 * driver takes TLS from [oslo_messaging_rabbit] ssl, not from the URL query.
 */
import { ConfigError } from '../errors.ts';

export interface BrokerHost {
  /** Host name or IP (IPv6 without brackets). */
  host: string;
  /** TCP port. Default 5672. */
  port: number;
  /** Decoded user name; null when the URL gives none (oslo then passes '' to kombu). */
  username: string | null;
  /** Decoded password; null when the URL gives none. Secret: never log. */
  password: string | null;
}

export interface TransportUrl {
  /** URL scheme, e.g. "rabbit". */
  transport: string;
  /** Brokers in URL order (oslo shuffles them at connect time). At least one. */
  hosts: BrokerHost[];
  /** AMQP virtual host, decoded. Default "/" (kombu's default for an empty path). */
  virtualHost: string;
  /** Use TLS. Set from [oslo_messaging_rabbit] ssl by loadConfig (default false); the URL itself cannot enable it in oslo 14. */
  ssl: boolean;
  /** Query parameters; repeated keys joined with ",", as oslo does. */
  query: Record<string, string>;
}

const DEFAULT_PORT = 5672;

/** Parse a transport URL. Errors never contain the URL (it carries passwords). Throws ConfigError. */
export function parseTransportUrl(url: string, where: { file?: string; ssl?: boolean } = {}): TransportUrl {
  const fail = (reason: string): never => {
    const prefix = where.file !== undefined ? `${where.file}: ` : '';
    throw new ConfigError(`${prefix}[DEFAULT] transport_url: ${reason}`, {
      ...(where.file !== undefined ? { file: where.file } : {}),
      section: 'DEFAULT',
      option: 'transport_url',
    });
  };
  // urllib.parse.urlparse: scheme ":" then "//" netloc up to the first / ? #.
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?$/su.exec(url.trim());
  if (m === null) return fail('no scheme specified');
  const transport = m[1]!.toLowerCase();
  const netloc = m[2] ?? '';
  const path = m[3] ?? '';
  const query = parseQuery(m[4] ?? '');

  const decoded = path.startsWith('/') ? decode(path.slice(1), fail) : '';
  const virtualHost = decoded === '' ? '/' : decoded;

  const hosts: BrokerHost[] = [];
  for (const part of netloc.split(',')) {
    if (part === '') continue;
    let hostname = part;
    let username: string | null = null;
    let password: string | null = null;
    let port: string | null = null;
    const at = part.lastIndexOf('@');
    if (at >= 0) {
      let user = part.slice(0, at);
      hostname = part.slice(at + 1);
      const colon = user.indexOf(':');
      if (colon >= 0) {
        password = decode(user.slice(colon + 1), fail);
        user = user.slice(0, colon);
      }
      username = decode(user, fail);
    }
    if (hostname.startsWith('[')) {
      const end = hostname.indexOf(']');
      if (end < 0) fail('invalid IPv6 host (missing "]")');
      const rest = hostname.slice(end);
      hostname = hostname.slice(1, end);
      if (rest.includes(':')) port = rest.slice(rest.indexOf(':') + 1);
    } else if (hostname.includes(':')) {
      const colon = hostname.indexOf(':');
      port = hostname.slice(colon + 1);
      hostname = hostname.slice(0, colon);
    }
    if (hostname === '') fail('a host entry has no host name');
    let portNumber = DEFAULT_PORT;
    if (port !== null && port !== '') {
      if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/u.test(port)) fail(`invalid port for host ${hostname}`);
      portNumber = Number(port.trim().replaceAll('_', ''));
      if (portNumber < 1 || portNumber > 65535) fail(`port out of range for host ${hostname}`);
    }
    hosts.push({ host: hostname, port: portNumber, username, password });
  }
  if (hosts.length === 0) {
    // impl_rabbit: no host → kombu's defaults, guest:guest@localhost:5672.
    hosts.push({ host: 'localhost', port: DEFAULT_PORT, username: 'guest', password: 'guest' });
  }
  return { transport, hosts, virtualHost, ssl: where.ssl ?? false, query };
}

function decode(s: string, fail: (reason: string) => never): string {
  // urllib.parse.unquote leaves malformed escapes as they are; decodeURIComponent throws.
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/(?:%[0-9A-Fa-f]{2})+/gu, (seq) => {
      try {
        return decodeURIComponent(seq);
      } catch {
        return fail('invalid percent-encoding');
      }
    });
  }
}

function parseQuery(qs: string): Record<string, string> {
  // parse_qs: "&"-separated, "+" is space, blank values dropped, repeated keys collected.
  const out: Record<string, string[]> = {};
  for (const pair of qs.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const value = pair.slice(eq + 1);
    if (value === '') continue;
    const dec = (s: string): string => {
      try {
        return decodeURIComponent(s.replaceAll('+', ' '));
      } catch {
        return s;
      }
    };
    const key = dec(pair.slice(0, eq));
    (out[key] ??= []).push(dec(value));
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.join(',')]));
}
