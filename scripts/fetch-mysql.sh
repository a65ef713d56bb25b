#!/usr/bin/env bash
# Fetches a real MySQL server (not MariaDB) for the MySQL test suite.
# Debian bookworm packages only MariaDB; Debian unstable packages Oracle's
# MySQL (mysql-server-core, 9.x today). Its packages and every library they
# need, down to unstable's own C library, are unpacked into one directory (no
# dpkg install: the machine's bookworm libraries stay as they are), and
# bin/mysqld runs the server under unstable's dynamic loader with that
# directory's libraries. Used only by test/integration/mysql/mysql-server.test.ts;
# a guest image has its distribution's mysql-server instead.
#
#   scripts/fetch-mysql.sh [dir]    (default /var/cache/guestagent-mysql, or $GA_MYSQL_DIR)
#
# bin/mysql, bin/mysqldump and bin/mysqlbinlog run the client programs the same
# way (MySQL's logical backups and restores; the agent's [mysql] client_bin_dir).
#
# Fetches nothing when dir/bin/mysqld already runs. Exits non-zero when it cannot
# fetch (the suite then skips and says why).
set -euo pipefail

DEST=${1:-${GA_MYSQL_DIR:-/var/cache/guestagent-mysql}}
MIRROR=${GA_MYSQL_MIRROR:-http://deb.debian.org/debian}

# Wrappers for unstable's client programs in $1/bin, run from $DEST/root.
wrap_clients() {
  local R="$DEST/root" tool
  for tool in mysql mysqldump mysqlbinlog; do
    cat > "$1/bin/$tool" <<EOF
#!/bin/sh
# Debian unstable's $tool under its own loader and libraries (scripts/fetch-mysql.sh).
exec "$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" "$R/usr/bin/$tool" "\$@"
EOF
    chmod 755 "$1/bin/$tool"
  done
}

if "$DEST/bin/mysqld" --version >/dev/null 2>&1; then
  [ -x "$DEST/bin/mysqlbinlog" ] || wrap_clients "$DEST"
  echo "fetch-mysql: $("$DEST/bin/mysqld" --version | head -1)"
  exit 0
fi

work=$(mktemp -d "${DEST%/}.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/debs" "$work/root"
echo "deb $MIRROR sid main" > "$work/apt/sources.list"
APT=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
     -o APT::Architecture=amd64 -o APT::Sandbox::User=root)

apt-get "${APT[@]}" -qq update
# The server, its client (the tests' checks use neither, an operator debugging does) and every
# package they depend on, recursively; perl only serves mysqld_safe and the helper scripts.
mapfile -t pkgs < <(apt-cache "${APT[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances mysql-server-core mysql-client-core \
  | grep -v '^ ' | grep -v '^<' | grep -Ev '^(perl|perl-base|perl-modules-.*|libperl.*)$' | sort -u)
[ ${#pkgs[@]} -gt 10 ] || { echo "fetch-mysql: unstable has no mysql-server-core" >&2; exit 1; }
(cd "$work/debs" && apt-get "${APT[@]}" -qq download "${pkgs[@]}")
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done

R="$DEST/root"
mkdir -p "$work/bin"
# --defaults-file / --defaults-extra-file / --no-defaults must stay mysqld's first options.
cat > "$work/bin/mysqld" <<EOF
#!/bin/sh
# Debian unstable's mysqld under its own loader and libraries (scripts/fetch-mysql.sh).
first=
case "\${1:-}" in --defaults-file=*|--defaults-extra-file=*|--no-defaults) first=\$1; shift;; esac
exec "$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" \\
  "$R/usr/sbin/mysqld" \${first:+"\$first"} --basedir="$R/usr" --lc-messages-dir="$R/usr/share/mysql" \\
  --character-sets-dir="$R/usr/share/mysql/charsets" --plugin-dir="$R/usr/lib/mysql/plugin" "\$@"
EOF
chmod 755 "$work/bin/mysqld"
wrap_clients "$work"

rm -rf "$DEST"
mkdir -p "$DEST"
mv "$work/root" "$work/bin" "$DEST/"
"$DEST/bin/mysqld" --version
