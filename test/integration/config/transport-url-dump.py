"""Print, as JSON, what oslo.messaging 14 makes of each transport URL given on
argv: TransportURL.parse plus the rabbit driver's per-host defaults (port 5672,
kombu vhost). Peer for transport-url-parity.test.ts; run with /usr/bin/python3."""
import json
import sys

from oslo_config import cfg
from oslo_messaging import transport

out = []
for url in sys.argv[1:]:
    try:
        u = transport.TransportURL.parse(cfg.ConfigOpts(), url)
    except Exception as e:
        out.append({'error': type(e).__name__})
        continue
    hosts = [{'host': h.hostname, 'port': h.port or 5672, 'username': h.username, 'password': h.password}
             for h in u.hosts]
    if not hosts:
        # impl_rabbit: no host -> guest:guest@localhost:5672
        hosts = [{'host': 'localhost', 'port': 5672, 'username': 'guest', 'password': 'guest'}]
    out.append({'transport': u.transport, 'hosts': hosts,
                'virtualHost': u.virtual_host or '/', 'query': u.query})
json.dump(out, sys.stdout)
