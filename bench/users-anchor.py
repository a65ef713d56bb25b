#!/usr/bin/python3
"""The anchor of bench/users.ts: Trove 18's own MySQL admin code, in-process.

Runs trove.guestagent.datastore.mariadb.service.MariaDBAdmin (its create_users
and list_users are trove.guestagent.datastore.mysql_common.service's
BaseMySqlAdmin) against the bench's mariadbd, as os_admin over its unix socket,
through Trove's own engine (BaseMySqlApp.get_engine: SQLAlchemy + PyMySQL,
Trove's checkout listener) and SqlClient. Two things are set for this machine:
the socket path in the connection string (Trove hard-codes
/var/run/mysqld/mysqld.sock) and where the os_admin password is read (Trove
copies its os_admin.cnf with sudo; here it is handed over on stdin).

stdin:  {"socket", "password", "database", "users": [serialized MySQLUser], "limit", "server_pid"}
stdout: one JSON line: seconds and CPU seconds (os.times of this process, and
        mariadbd's from /proc) per phase, pages listed, users seen.
"""
import json
import os
import sys
import tempfile
import time
import warnings

warnings.filterwarnings('ignore')

from trove.common import cfg  # noqa: E402

req = json.load(sys.stdin)
CONF = cfg.CONF
conf = tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False)
conf.write('[DEFAULT]\ndatastore_manager = mariadb\ndatastore_version = 10.11\n')
conf.close()
CONF(['--config-file', conf.name], project='trove')
os.unlink(conf.name)

from trove.guestagent.datastore.mariadb import service as mariadb_service  # noqa: E402
from trove.guestagent.datastore.mysql_common import service as mysql_service  # noqa: E402

mysql_service.CONNECTION_STR_FORMAT = (
    'mysql+pymysql://%s:%s@localhost/?unix_socket=' + req['socket'])


class App(mariadb_service.MariaDBApp):
    @classmethod
    def get_auth_password(cls, file='os_admin.cnf'):
        return req['password']


admin = mariadb_service.MariaDBAdmin(App(None, None))
# Untimed: the database the users are granted, through Trove's create_databases.
admin.create_databases([{'_name': req['database'], '_character_set': None, '_collate': None}])


def cpu():
    t = os.times()
    return t.user + t.system


def server_cpu():
    with open('/proc/%d/stat' % req['server_pid']) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


users = req['users']
s0, c0, t0 = server_cpu(), cpu(), time.perf_counter()
admin.create_users(users)
create_s, create_cpu, create_srv = time.perf_counter() - t0, cpu() - c0, server_cpu() - s0

limit = req['limit']
marker = None
pages = 0
seen = 0
s0, c0, t0 = server_cpu(), cpu(), time.perf_counter()
while True:
    # As Trove's API asks the guest (trove/extensions/mysql/models.py load_via_context).
    page, marker = admin.list_users(limit=limit, marker=marker, include_marker=False)
    pages += 1
    seen += len(page)
    if marker is None:
        break
list_s, list_cpu, list_srv = time.perf_counter() - t0, cpu() - c0, server_cpu() - s0
print(json.dumps({
    'create': {'seconds': create_s, 'cpu': create_cpu, 'serverCpu': create_srv},
    'list': {'seconds': list_s, 'cpu': list_cpu, 'serverCpu': list_srv, 'pages': pages, 'users': seen}}))
