#!/usr/bin/python3
"""Trove's own guest API client, driven over JSON lines, for integration tests.

Everything on the wire is Trove 18's real code: trove.rpc.init, the
SecureSerializer, trove.guestagent.api.API and oslo.messaging's RPCClient.
The only replacement is the instance key lookup, which Trove does in its
database (trove.instance.models.get_instance_encryption_key).

Environment: PEER_TRANSPORT_URL, PEER_CONTROL_EXCHANGE (default trove),
PEER_GUEST_ID, PEER_INSTANCE_KEY (absent = no encryption).
stdin:  {"id": 1, "method": "list_users", "kwargs": {...}}            (API method)
        {"id": 2, "raw": true, "method": "m", "kwargs": {}, "version": "1.0",
         "call": true, "timeout": 5, "call_monitor_timeout": null}      (client directly)
        {"id": 3, "notification": true, ...}  attaches a DBaaSInstanceCreate
        notification to the context, as the taskmanager does for prepare.
stdout: {"id": 1, "ok": true, "result": ...} or
        {"id": 1, "ok": false, "error": {"class", "module", "message",
         "remote_class", "remote_module", "remote_message"}}
"""
import json
import os
import sys
import tempfile
import threading
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

warnings.filterwarnings('ignore')

from trove.common import cfg  # noqa: E402

CONF = cfg.CONF
conf_file = tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False)
conf_file.write('[DEFAULT]\ntransport_url = %s\ncontrol_exchange = %s\n' % (
    os.environ['PEER_TRANSPORT_URL'], os.environ.get('PEER_CONTROL_EXCHANGE', 'trove')) + os.environ.get('PEER_EXTRA_CONF', '').replace('\\n', '\n') + '\n')
conf_file.close()
CONF(['--config-file', conf_file.name], project='trove')
os.unlink(conf_file.name)

from trove import rpc  # noqa: E402
from trove.common import context as trove_context  # noqa: E402
from trove.guestagent import api as guest_api  # noqa: E402

rpc.init(CONF)
GUEST_ID = os.environ['PEER_GUEST_ID']
KEY = os.environ.get('PEER_INSTANCE_KEY') or None
OUT = threading.Lock()


def new_context(notification=False, extra=None):
    # extra: e.g. auth_token and service_catalog, which Swift access needs, or is_admin.
    ctx = trove_context.TroveContext(**{'user': 'peer-user', 'project_id': 'peer-project', 'is_admin': False, **(extra or {})})
    if notification:
        from trove.common.notification import DBaaSInstanceCreate
        # As the taskmanager attaches it: request id, tenant, server type.
        ctx.notification = DBaaSInstanceCreate(
            ctx, request_id=ctx.request_id, server_type='taskmanager',
            tenant_id=ctx.project_id, client_ip='127.0.0.1', server_ip='127.0.0.1')
    return ctx


def make_api(ctx):
    with mock.patch('trove.instance.models.get_instance_encryption_key', return_value=KEY):
        return guest_api.API(ctx, GUEST_ID)


# prepare pre-declares the guest's queues with a short-lived RPC server whose
# key comes from the instance row (API._create_guest_queue): only the row
# lookup is replaced.
mock.patch('trove.instance.models.DBInstance.get_by',
           side_effect=lambda **kw: types.SimpleNamespace(key=KEY)).start()


def uncapped_client():
    """An RPCClient without Trove 18's version cap, to send any version."""
    from oslo_messaging import Target
    return rpc.get_client(Target(topic='guestagent.%s' % GUEST_ID), key=KEY)


def describe(e):
    err = {'class': type(e).__name__, 'module': type(e).__module__, 'message': str(e)}
    inner = e.__context__ or e.__cause__
    target = inner if inner is not None else e
    name = type(target).__name__
    if name.endswith('_Remote'):
        name = name[:-len('_Remote')]
    err['remote_class'] = getattr(target, 'exc_type', None) or name
    err['remote_module'] = type(target).__module__
    err['remote_message'] = getattr(target, 'value', None) or str(target)
    return err


def handle(req):
    ctx = new_context(req.get('notification', False), req.get('context'))
    api = make_api(ctx)
    kwargs = req.get('kwargs') or {}
    if req.get('raw'):
        opts = {'version': req.get('version', '1.0')}
        if req.get('timeout') is not None:
            opts['timeout'] = req['timeout']
        if req.get('call_monitor_timeout') is not None:
            opts['call_monitor_timeout'] = req['call_monitor_timeout']
        cctxt = uncapped_client().prepare(**opts)
        if req.get('call', True):
            return cctxt.call(ctx, req['method'], **kwargs)
        cctxt.cast(ctx, req['method'], **kwargs)
        return None
    if req.get('timeout') is not None:
        api.agent_low_timeout = api.agent_high_timeout = req['timeout']
    return getattr(api, req['method'])(**kwargs)


def run(req):
    try:
        out = {'id': req['id'], 'ok': True, 'result': handle(req)}
    except BaseException as e:  # noqa: B902 - report everything to the test
        out = {'id': req['id'], 'ok': False, 'error': describe(e)}
    with OUT:
        sys.stdout.write(json.dumps(out, default=str) + '\n')
        sys.stdout.flush()


def main():
    pool = ThreadPoolExecutor(max_workers=32)
    with OUT:
        sys.stdout.write(json.dumps({'ready': True}) + '\n')
        sys.stdout.flush()
    for line in sys.stdin:
        line = line.strip()
        if line:
            pool.submit(run, json.loads(line))
    pool.shutdown(wait=True)


if __name__ == '__main__':
    main()
