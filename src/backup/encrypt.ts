/**
 * Streaming encryption in the format of
 * `openssl enc -aes-256-cbc -md sha512 -pbkdf2 -iter 10000 -salt -pass pass:<key>`
 * (Trove's pre-Victoria backups): `Salted__` + 8-byte salt, then AES-256-CBC
 * with PKCS#7 padding, key and IV = PBKDF2-HMAC-SHA512(pass, salt, 10000, 48 bytes).
 * The key lives in memory only: never on argv, never logged.
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes, type Decipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BadRequestError } from '../errors.ts';

const MAGIC = Buffer.from('Salted__', 'latin1');
const ITER = 10_000;

function deriveKeyIv(pass: string | Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const kiv = pbkdf2Sync(pass, salt, ITER, 48, 'sha512');
  return { key: kiv.subarray(0, 32), iv: kiv.subarray(32, 48) };
}

/** Encrypts a stream; `salt` is random unless given (tests). */
export function createEncryptor(pass: string | Buffer, salt: Buffer = randomBytes(8)): Transform {
  if (salt.length !== 8) throw new RangeError('salt must be 8 bytes');
  const { key, iv } = deriveKeyIv(pass, salt);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  let headerSent = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!headerSent) { this.push(Buffer.concat([MAGIC, salt])); headerSent = true; }
      const out = cipher.update(chunk);
      cb(null, out.length ? out : undefined);
    },
    flush(cb: TransformCallback) {
      if (!headerSent) { this.push(Buffer.concat([MAGIC, salt])); headerSent = true; }
      cb(null, cipher.final());
    },
  });
}

export interface DecryptOptions {
  /**
   * How the stream starts when it was never encrypted (the codec's magic). Trove's own tool
   * (backup/drivers/base.py, since Victoria) names a backup `.enc` whenever it is given a key
   * but writes it in the clear; such a stream is passed on unchanged, and onPlain is told.
   */
  plainMagic?: Buffer;
  onPlain?: () => void;
}

/**
 * Decrypts a stream written by createEncryptor or by `openssl enc` with the same options.
 * Without a key (null) only a stream that turns out to be in the clear gets through.
 */
export function createDecryptor(pass: string | Buffer | null, o: DecryptOptions = {}): Transform {
  let head: Buffer = Buffer.alloc(0);
  let decipher: Decipheriv | null = null;
  let plain = false;
  const fail = (): Error => new BadRequestError('encrypted backup has no OpenSSL "Salted__" header (wrong format or not encrypted)');
  const noKey = (): Error => new BadRequestError('the backup is encrypted and no backup encryption key is configured');
  const isPlain = (b: Buffer) => !!o.plainMagic && b.length >= o.plainMagic.length && b.subarray(0, o.plainMagic.length).equals(o.plainMagic);
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        if (plain) { cb(null, chunk); return; }
        if (!decipher) {
          head = Buffer.concat([head, chunk]);
          if (head.length < 16) { cb(); return; }
          if (isPlain(head)) {
            plain = true;
            o.onPlain?.();
            const all = head;
            head = Buffer.alloc(0);
            cb(null, all);
            return;
          }
          if (!head.subarray(0, 8).equals(MAGIC)) { cb(fail()); return; }
          if (pass === null) { cb(noKey()); return; }
          const { key, iv } = deriveKeyIv(pass, head.subarray(8, 16));
          decipher = createDecipheriv('aes-256-cbc', key, iv);
          chunk = head.subarray(16);
          head = Buffer.alloc(0);
        }
        const out = decipher.update(chunk);
        cb(null, out.length ? out : undefined);
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      if (plain) { cb(); return; }
      if (!decipher) {
        if (isPlain(head)) { o.onPlain?.(); cb(null, head); return; }
        cb(fail());
        return;
      }
      try {
        cb(null, decipher.final());
      } catch (e) {
        cb(new BadRequestError('backup decryption failed (wrong key or corrupt data)', { cause: e }));
      }
    },
  });
}
