#!/usr/bin/env bash
# Installs what the agent and its test suite need on Debian bookworm, and
# only what is missing: the real Trove Python code (the test peer), the
# servers the tests run privately (RabbitMQ, MariaDB, Swift, Keystone), the backup and
# volume tools. Service start-up during install is disabled (policy-rc.d):
# the tests start their own servers on their own ports.
set -euo pipefail

PACKAGES=(
  python3-trove python3-oslo.messaging          # Trove 18 + oslo.messaging 14: the real peer in tests
  rabbitmq-server                               # private broker per test run
  mariadb-server mariadb-backup                 # MySQL/MariaDB datastore and its backups
  postgresql-15                                 # PostgreSQL datastore (initdb, postgres, pg_basebackup)
  redis-server                                  # Redis datastore
  swift swift-proxy swift-account swift-container swift-object python3-swiftclient memcached  # private Swift
  python3-keystone python3-keystonemiddleware   # private Keystone v3 (library only, no apache) + Swift's authtoken/keystoneauth
  e2fsprogs xfsprogs util-linux rsync           # volume handling
  openssl gzip zstd curl ca-certificates       # zstd: the agent's zstd backup codec
  gcc libc6-dev                                 # native/idle-memory.c (npm ci's postinstall)
  cloud-init python3-jsonschema systemd         # template schema checks and unit verification
  debootstrap systemd-container                 # npm run test:boot (the real-boot test; not in npm test)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run this script as root)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
  fi
  trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi
echo "install-deps: Debian packages present"

# Oracle's MySQL for the MySQL suite (Debian bookworm packages only MariaDB): unpacked from
# Debian unstable into /var/cache/guestagent-mysql, bookworm's own libraries left alone.
if [ "$(id -u)" -eq 0 ]; then
  "$(dirname "$0")/fetch-mysql.sh" || echo "install-deps: no MySQL server fetched: the MySQL suite will skip" >&2
fi
