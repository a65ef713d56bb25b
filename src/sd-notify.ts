/**
 * systemd's notify protocol (sd_notify(3)) for the agent's unit
 * (Type=notify, WatchdogSec=): STATUS while it starts, READY=1 once it
 * consumes RPC, WATCHDOG=1 pings from the event loop (a loop that hangs
 * stops them and systemd restarts the agent), STOPPING=1 on the way out.
 *
 * Node cannot open AF_UNIX datagram sockets, so one long-lived python3
 * child (always in a Trove guest: cloud-init needs it) sends each message;
 * it lives in the unit's cgroup, which NotifyAccess=all accepts. A
 * short-lived `systemd-notify` would not do: systemd 252 drops a message
 * whose sender has already exited, as it cannot tell its unit.
 *
 * NOTIFY_SOCKET and WATCHDOG_* are removed from the agent's environment at
 * once: a server the agent starts itself (mariadbd, postgres, redis-server
 * all speak sd_notify) must not send READY=1 on the agent's behalf.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from './log.ts';

const SENDER = `
import json, os, socket, sys
address = os.environ['NOTIFY_SOCKET']
if address.startswith('@'):
    address = '\\0' + address[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for line in sys.stdin:
    try:
        s.sendto(json.loads(line).encode(), address)
    except OSError as e:
        print('sd_notify: %s' % e, file=sys.stderr, flush=True)
`;

export interface SdNotifier {
  /** STATUS= shown by `systemctl status guestagent`. */
  status(text: string): void;
  /** READY=1 (with a status), then watchdog pings if the unit asked for them. */
  ready(status: string): void;
  /** STOPPING=1; the watchdog stops. */
  stopping(): void;
  close(): void;
}

/** null when the agent does not run under a notify unit. Takes NOTIFY_SOCKET and WATCHDOG_* out of `env`. */
export function createSdNotifier(env: NodeJS.ProcessEnv, log: Logger, python = '/usr/bin/python3'): SdNotifier | null {
  const socketPath = env['NOTIFY_SOCKET'];
  const watchdogUsec = Number(env['WATCHDOG_USEC'] ?? 0);
  const watchdogPid = env['WATCHDOG_PID'];
  delete env['NOTIFY_SOCKET'];
  delete env['WATCHDOG_USEC'];
  delete env['WATCHDOG_PID'];
  if (!socketPath) return null;
  let sender: ChildProcess | null = spawn(python, ['-c', SENDER], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: env['PATH'] ?? '/usr/bin:/bin', NOTIFY_SOCKET: socketPath } });
  sender.stderr!.setEncoding('utf8').on('data', (d: string) => log.warn({ detail: d.trim() }, 'sd_notify sender'));
  sender.on('error', (err) => {
    log.warn({ err, python }, 'cannot start the sd_notify sender: systemd will not see the agent ready');
    sender = null;
  });
  sender.on('exit', () => (sender = null));
  sender.stdin!.on('error', () => {});
  const send = (fields: Record<string, string>): void => {
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`)
      .join('\n');
    sender?.stdin?.write(`${JSON.stringify(text)}\n`);
  };
  let watchdog: NodeJS.Timeout | null = null;
  return {
    status: (text) => send({ STATUS: text }),
    ready(status) {
      send({ READY: '1', STATUS: status });
      // Half the unit's WatchdogSec, as sd_watchdog_enabled(3) advises; only for the pid systemd watches.
      if (watchdogUsec > 0 && (!watchdogPid || Number(watchdogPid) === process.pid)) {
        watchdog = setInterval(() => send({ WATCHDOG: '1' }), Math.max(100, watchdogUsec / 2000));
        watchdog.unref();
      }
    },
    stopping() {
      if (watchdog) clearInterval(watchdog);
      watchdog = null;
      send({ STOPPING: '1', STATUS: 'stopping' });
    },
    close() {
      if (watchdog) clearInterval(watchdog);
      sender?.stdin?.end();
      sender = null;
    },
  };
}
