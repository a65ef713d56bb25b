/**
 * The one place an error becomes an oslo.messaging failure
 * (oslo_messaging/_drivers/common.py serialize_remote_exception): a JSON
 * string of {class, module, message, tb, args, kwargs}. The Python caller
 * rebuilds classes from trove.common.exception as `<Class>_Remote` and
 * builtins as themselves (message = message + "\n" + tb lines), so the class
 * names must be Trove's and the text must be safe to show a user: redacted,
 * no JavaScript stack.
 */
import { AgentError } from '../errors.ts';
import { redactText } from '../log.ts';
import { pyJson } from './secure-codec.ts';

export interface OsloFailure {
  class: string;
  module: string;
  message: string;
  tb: string[];
  args: unknown[];
  kwargs: Record<string, unknown>;
}

export function toOsloFailure(err: unknown): OsloFailure {
  let cls = 'GuestError';
  let mod = 'trove.common.exception';
  let message: string;
  let args: unknown[] | null = null;
  if (err instanceof AgentError) {
    cls = err.troveClass;
    mod = err.troveModule;
    message = redactText(err.message);
  } else if (err instanceof Error) {
    // Unknown errors keep their text (redacted) but travel as GuestError.
    message = redactText(err.message || err.name);
  } else {
    message = redactText(String(err));
  }
  if (cls === 'KeyError' && mod === 'builtins') {
    // Python prints KeyError's message as the repr of its key.
    args = [message];
    message = `'${message}'`;
  }
  return {
    class: cls,
    module: mod,
    message,
    tb: ['Traceback (most recent call last):\n', `${mod === 'builtins' ? '' : mod + '.'}${cls}: ${message}\n`],
    args: args ?? [message],
    kwargs: {},
  };
}

/** The `failure` field of a reply: the failure dict JSON-encoded as a string (never encrypted). */
export function serializeFailure(err: unknown): string {
  return pyJson(toOsloFailure(err));
}
