/**
 * Trove's validation rules for MySQL names (trove/common/db/mysql/models.py
 * and trove/common/db/models.py), applied before any SQL is built. Values
 * that pass still reach SQL only as escaped identifiers or parameters.
 */
import { isIP } from 'node:net';
import { InvalidValueError } from '../../src/errors.ts';

/** MySQLSchema.dbname: letters, digits, '_' and '-', with spaces, '?', '#', '@' allowed inside. */
const DB_NAME = /^[A-Za-z0-9_-]+[\s?#@]*[A-Za-z0-9_-]+$/;
/** MySQLUser.not_supported_chars: leading/trailing space, quotes, ';', '`', ',', '/', '\'. */
const NOT_SUPPORTED = /^\s|\s$|'|"|;|`|,|\/|\\/;
/** Characters Python's repr would escape with a backslash (control characters). */
const REPR_ESCAPED = /[\x00-\x1f\x7f]/;

export const MAX_SCHEMA_NAME = 64;
/** Trove says 16; MariaDB and MySQL 5.7+ allow 80 and 32. Trove's limit is what its API promises. */
export const MAX_USER_NAME = 16;

function isStr(v: unknown): v is string {
  return typeof v === 'string';
}

export function validateDatabaseName(name: unknown): string {
  if (!isStr(name)) throw new InvalidValueError(`Schema name is not a string. Type = ${typeof name}.`);
  if (name.length > MAX_SCHEMA_NAME) {
    throw new InvalidValueError(`Schema name '${name}' is too long. Max length = ${MAX_SCHEMA_NAME}.`);
  }
  if (!DB_NAME.test(name) || REPR_ESCAPED.test(name)) throw new InvalidValueError(`'${name}' is not a valid schema name.`);
  return name;
}

function validString(v: string): boolean {
  return v !== '' && !NOT_SUPPORTED.test(v) && !REPR_ESCAPED.test(v);
}

export function validateUserName(name: unknown): string {
  if (!isStr(name)) throw new InvalidValueError(`User name is not a string. Type = ${typeof name}.`);
  if (name.length > MAX_USER_NAME) throw new InvalidValueError(`User name '${name}' is too long. Max length = ${MAX_USER_NAME}.`);
  if (!validString(name)) throw new InvalidValueError(`'${name}' is not a valid user name.`);
  return name;
}

/** Trove echoes the password in its error; we never do. */
export function validatePassword(password: unknown): string {
  if (!isStr(password) || !validString(password)) {
    throw new InvalidValueError('The password is not valid: it must be non-empty, without leading or trailing spaces, quotes, ";", "`", ",", "/" or "\\".');
  }
  return password;
}

/**
 * Hosts: '%' or null means anywhere; otherwise, with hostname_require_valid_ip
 * (Trove's default, true), an IP address or network once each '%' is read as 1.
 */
export function validateHost(host: unknown, requireValidIp = true): string {
  if (host === null || host === undefined || host === '%') return '%';
  if (!isStr(host)) throw new InvalidValueError('Host is not a string.');
  const bad = (): never => {
    throw new InvalidValueError(`'${host}' is not a valid hostname.`);
  };
  if (REPR_ESCAPED.test(host) || /['"`\\;\s]/.test(host)) bad();
  if (!requireValidIp) return host;
  const [addr, prefix, ...rest] = host.replace(/%/g, '1').split('/');
  // netaddr.IPNetwork also takes abbreviated IPv4 ('10.1' for 10.1.0.0), so '10.%' is a valid host.
  const shortV4 = (a: string) => /^\d{1,3}(\.\d{1,3}){0,3}$/.test(a) && a.split('.').every((o) => Number(o) <= 255);
  if (rest.length > 0 || !addr || (isIP(addr) === 0 && !shortV4(addr))) bad();
  // A prefix length or, as MySQL writes host masks, a dotted netmask.
  if (prefix !== undefined && isIP(prefix) !== 4 && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (isIP(addr!) === 6 ? 128 : 32))) bad();
  return host;
}
