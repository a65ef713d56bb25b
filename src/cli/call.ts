/**
 * `guestagent call <method> [json-kwargs]`: poke a running agent the way
 * Trove's API does, without a Trove cloud. Prints the (decrypted) result as
 * JSON; a remote failure prints its class and message and exits 1.
 */
import amqplib from 'amqplib';
import type { CallArgs } from './args.ts';
import type { Settings } from '../main.ts';
import { RemoteCallError, RpcClient } from '../rpc/client.ts';
import { createSecureCodec } from '../rpc/secure-codec.ts';

export async function runCall(args: CallArgs, s: Settings): Promise<number> {
  const c = s.config;
  if (!c.guestId) {
    process.stderr.write('guestagent call: no guest id (give --guest-id, or run the agent locally first)\n');
    return 2;
  }
  const host = c.transportUrl.hosts[0]!;
  const model = await amqplib.connect({
    protocol: c.transportUrl.ssl ? 'amqps' : 'amqp',
    hostname: host.host,
    port: host.port,
    username: host.username ?? 'guest',
    password: host.password ?? 'guest',
    vhost: c.transportUrl.virtualHost,
  }, { noDelay: true });
  const client = new RpcClient(model, c.controlExchange, s.rpcKey ? createSecureCodec(s.rpcKey) : null);
  try {
    await client.open();
    const topic = `guestagent.${c.guestId}`;
    if (args.cast) {
      client.cast(topic, args.method, args.kwargs, { version: args.version });
      process.stdout.write('cast sent\n');
      return 0;
    }
    const result = await client.call(topic, args.method, args.kwargs, { version: args.version, timeoutMs: args.timeoutSec * 1000 });
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof RemoteCallError) {
      process.stderr.write(`${err.remoteModule ? err.remoteModule + '.' : ''}${err.remoteClass}: ${err.message}\n`);
    } else {
      process.stderr.write(`guestagent call: ${(err as Error).message}\n`);
    }
    return 1;
  } finally {
    await client.close();
    await model.close().catch(() => {});
  }
}
