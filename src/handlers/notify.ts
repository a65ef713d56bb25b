/**
 * Trove's EndNotification around a guest operation: when the caller's
 * context carries a `trove_notification`, the outcome is forwarded to
 * conductor (notify_end on success, notify_exc_info with the message and a
 * traceback-like list on failure), as trove/common/notification.py does.
 */
import type { CallContext } from '../rpc/dispatcher.ts';
import { redactText } from '../log.ts';
import { isDict } from './wire.ts';
import type { Reporter } from './deps.ts';

export async function withEndNotification<T>(
  ctx: CallContext,
  reporter: Reporter,
  payload: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  const n = ctx.request['trove_notification'];
  if (!isDict(n)) return fn();
  const serialized = { ...n, ...payload };
  try {
    const result = await fn();
    await reporter.notifyEnd(serialized, {}).catch((err: unknown) => ctx.log.warn({ err }, 'notify_end failed'));
    return result;
  } catch (err) {
    const message = redactText(err instanceof Error ? err.message : String(err));
    const name = err instanceof Error ? err.name : 'Error';
    const exception = ['Traceback (most recent call last):\n', `${name}: ${message}\n`];
    await reporter.notifyExcInfo(serialized, message, exception).catch((e: unknown) => ctx.log.warn({ err: e }, 'notify_exc_info failed'));
    throw err;
  }
}
