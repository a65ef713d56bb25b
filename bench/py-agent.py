#!/usr/bin/python3
"""Trove 18's own guest agent (trove.cmd.guest.main), for side-by-side benchmarks.

Only start-up side effects that would touch the machine are neutralised: the
`database` system user is not created. bench/rpc.ts runs this in a private
mount namespace with tmpfs over /etc/mysql, /var/lib/mysql, /var/run/mysqld
and /opt, and a stand-in Docker API answering /version (docker-py asks it
when the mysql manager is built). The RPC server is Trove's, unchanged.
"""
import sys
import warnings
from unittest import mock

warnings.filterwarnings('ignore')

from trove.guestagent.common import operating_system  # noqa: E402

mock.patch.object(operating_system, 'create_user', lambda *a, **k: None).start()

from trove.cmd import guest  # noqa: E402

sys.argv[0] = 'trove-guestagent'
guest.main()
