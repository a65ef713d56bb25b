/**
 * Trove's per-instance RPC encryption (trove/common/crypto_utils.py and
 * trove/common/rpc/{secure_serializer,conductor_guest_serializer}.py):
 * every value is JSON-encoded, PKCS#7-padded to 16 bytes and encrypted with
 * AES-CBC under the 32 ASCII bytes of md5(instance_key).hexdigest()
 * (so AES-256), a fresh random 16-byte IV prepended, then base64-encoded.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomFillSync } from 'node:crypto';

const IV_BYTES = 16;
/** IVs drawn from the CSPRNG 256 at a time: one call into OpenSSL (and its fork check) per 256 messages, not per message. */
const IV_POOL_BYTES = IV_BYTES * 256;

export class DecryptError extends Error {}

/** A codec bound to one instance key. */
export interface SecureCodec {
  encrypt(value: unknown): string;
  /** Throws DecryptError when the text is not a value encrypted with this key. */
  decrypt(text: unknown): unknown;
}

export function deriveKey(instanceKey: string): Buffer {
  return Buffer.from(createHash('md5').update(instanceKey, 'utf8').digest('hex'), 'ascii');
}

/** A source of fresh random IVs: each call returns bytes never returned before. */
export function pooledRandomIv(): (n: number) => Buffer {
  let pool = Buffer.alloc(0);
  let used = 0;
  return (n) => {
    if (used + n > pool.length) {
      // A new buffer each time: IVs handed out earlier stay untouched.
      pool = randomFillSync(Buffer.allocUnsafe(Math.max(IV_POOL_BYTES, n)));
      used = 0;
    }
    used += n;
    return pool.subarray(used - n, used);
  };
}

export function createSecureCodec(instanceKey: string, randomIv: (n: number) => Buffer = pooledRandomIv()): SecureCodec {
  // One KeyObject for the codec's life: converting a raw key on every call costs more than the cipher.
  const key = createSecretKey(deriveKey(instanceKey));
  return {
    encrypt(value: unknown): string {
      const iv = randomIv(IV_BYTES);
      // Node's cipher applies the same PKCS#7 padding Trove adds by hand.
      const c = createCipheriv('aes-256-cbc', key, iv);
      return Buffer.concat([iv, c.update(pyJson(value), 'utf8'), c.final()]).toString('base64');
    },
    decrypt(text: unknown): unknown {
      if (typeof text !== 'string') throw new DecryptError('value is not an encrypted string');
      const raw = Buffer.from(text, 'base64');
      if (raw.length < IV_BYTES * 2 || (raw.length - IV_BYTES) % 16 !== 0) {
        throw new DecryptError('value is not an encrypted string');
      }
      let plain: string;
      try {
        const d = createDecipheriv('aes-256-cbc', key, raw.subarray(0, IV_BYTES));
        // Decoded as it comes out: the decipher's UTF-8 decoder carries a character split across blocks.
        plain = d.update(raw.subarray(IV_BYTES), undefined, 'utf8') + d.final('utf8');
      } catch (e) {
        throw new DecryptError('value could not be decrypted with this instance key', { cause: e });
      }
      try {
        return JSON.parse(plain) as unknown;
      } catch (e) {
        throw new DecryptError('decrypted value is not JSON', { cause: e });
      }
    },
  };
}

/**
 * JSON as Python's json.dumps writes it (", " and ": " separators, non-ASCII
 * escaped), so what we encrypt is byte-for-byte what Trove would have.
 */
export function pyJson(value: unknown): string {
  return stringifyPy(value).replace(/[\u007f-\uffff]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
}

function stringifyPy(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return '[' + v.map(stringifyPy).join(', ') + ']';
  if (typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (val === undefined) continue;
      parts.push(JSON.stringify(k) + ': ' + stringifyPy(val));
    }
    return '{' + parts.join(', ') + '}';
  }
  if (typeof v === 'number' && !Number.isFinite(v)) return v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN';
  return JSON.stringify(v);
}
