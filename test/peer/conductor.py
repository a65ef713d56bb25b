#!/usr/bin/python3
"""A conductor stand-in built on Trove's real host-side conductor code path.

An oslo.messaging RPC server on topic `conductor_queue`, with Trove's own
ConductorHostSerializer (trove/common/rpc/conductor_host_serializer.py)
wrapping TroveRequestContextSerializer, exactly as trove-conductor builds it.
The only replacement is the instance key lookup (Trove reads it from its
database by `csz-instance-id`): PEER_INSTANCE_KEYS maps instance id -> key.
Each cast received is printed as one JSON line with its decrypted kwargs and
context; the methods have the signatures of trove/conductor/manager.py.

Environment: PEER_TRANSPORT_URL, PEER_CONTROL_EXCHANGE (default trove),
PEER_CONDUCTOR_QUEUE (default trove-conductor), PEER_INSTANCE_KEYS (JSON).
"""
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from unittest import mock

warnings.filterwarnings('ignore')

from trove.common import cfg  # noqa: E402

CONF = cfg.CONF
conf_file = tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False)
conf_file.write('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\nconductor_queue = %s\n' % (
    os.environ['PEER_TRANSPORT_URL'], os.environ.get('PEER_CONTROL_EXCHANGE', 'trove'),
    os.environ.get('PEER_CONDUCTOR_QUEUE', 'trove-conductor')) + os.environ.get('PEER_EXTRA_CONF', '').replace('\\n', '\n') + '\n')
conf_file.close()
CONF(['--config-file', conf_file.name], project='trove')
os.unlink(conf_file.name)

import oslo_messaging as messaging  # noqa: E402
from trove import rpc  # noqa: E402
from trove.common.rpc import conductor_host_serializer as host_sz  # noqa: E402
from trove.common.rpc import serializer as sz  # noqa: E402
from trove.common.rpc import version as rpc_version  # noqa: E402

KEYS = json.loads(os.environ.get('PEER_INSTANCE_KEYS') or '{}')
OUT = threading.Lock()


def key_for(instance_id):
    return KEYS.get(instance_id)


def emit(method, context, **kwargs):
    ctx = context.to_dict() if hasattr(context, 'to_dict') else context
    with OUT:
        sys.stdout.write(json.dumps({'method': method, 'received': time.time(),
                                     'kwargs': kwargs, 'context': ctx}, default=str) + '\n')
        sys.stdout.flush()


class Recorder(object):
    target = messaging.Target(version=rpc_version.RPC_API_VERSION)

    def heartbeat(self, context, instance_id, payload, sent=None):
        emit('heartbeat', context, instance_id=instance_id, payload=payload, sent=sent)

    def update_backup(self, context, instance_id, backup_id, sent=None, **backup_fields):
        emit('update_backup', context, instance_id=instance_id, backup_id=backup_id, sent=sent, **backup_fields)

    def report_root(self, context, instance_id, user=None):
        emit('report_root', context, instance_id=instance_id, user=user)

    def notify_end(self, context, serialized_notification, notification_args):
        emit('notify_end', context, serialized_notification=serialized_notification,
             notification_args=notification_args)

    def notify_exc_info(self, context, serialized_notification, message, exception):
        emit('notify_exc_info', context, serialized_notification=serialized_notification,
             message=message, exception=exception)


def main():
    rpc.init(CONF)
    with mock.patch.object(host_sz, 'get_instance_encryption_key', side_effect=key_for):
        serializer = host_sz.ConductorHostSerializer(sz.TroveRequestContextSerializer(None), None)
        target = messaging.Target(topic=CONF.conductor_queue, server='peer-conductor')
        server = messaging.get_rpc_server(rpc.TRANSPORT, target, [Recorder()], executor='threading',
                                          serializer=serializer,
                                          access_policy=messaging.DefaultRPCAccessPolicy)
        server.start()
        with OUT:
            sys.stdout.write(json.dumps({'ready': True}) + '\n')
            sys.stdout.flush()
        try:
            sys.stdin.read()  # runs until the test closes stdin
        finally:
            server.stop()
            server.wait()


if __name__ == '__main__':
    main()
