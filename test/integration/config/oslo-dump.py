"""Print, as JSON, every option value Trove 18's CONF resolves for the given
command line (the peer for oslo-parity.test.ts). Run with /usr/bin/python3."""
import json
import sys

from oslo_messaging import opts as mopts
from trove.common import cfg as tcfg
import trove.cmd.guest  # noqa: F401  registers guest_id / instance_rpc_encr_key

CONF = tcfg.CONF
for group, opts in mopts.list_opts():
    if group in (None, 'oslo_messaging_rabbit'):
        for opt in opts:
            try:
                CONF.register_opt(opt, group=group)
            except Exception:  # already registered by Trove
                pass
CONF(sys.argv[1:], project='trove', default_config_files=[])

out = {}
for group in ['DEFAULT', 'oslo_messaging_rabbit', 'mysql', 'mariadb', 'postgresql', 'redis', 'service_credentials']:
    ns = CONF if group == 'DEFAULT' else CONF.get(group)
    names = CONF._opts if group == 'DEFAULT' else CONF._groups[group]._opts
    values = {}
    for name in names:
        try:
            values[name] = ns.get(name) if group != 'DEFAULT' else CONF.get(name)
        except Exception as e:  # report, the test shows it
            values[name] = {'__error__': type(e).__name__}
    out[group] = values


def encode(v):
    # Range items (tcp_ports, udp_ports) as their inclusive [first, last].
    if isinstance(v, range):
        return {'range': [v.start, v.stop - v.step]}
    return str(v)


json.dump(out, sys.stdout, default=encode)
