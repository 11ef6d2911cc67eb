#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on DATABASE_URL's host (default 127.0.0.1:5432). On the
# project's machines PostgreSQL 15 is installed from Debian but may be stopped: start it.
set -euo pipefail
host=127.0.0.1
port=5432
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
  exit 0
fi
if [ -n "${DATABASE_URL:-}" ]; then
  echo "PostgreSQL at DATABASE_URL is not answering on $host:$port; start it yourself when it is not the local server" >&2
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
  echo "PostgreSQL is not running on $host:$port and no local cluster to start was found (install postgresql, or set DATABASE_URL)" >&2
  exit 1
fi
ver=$(ls /etc/postgresql | sort -V | tail -n 1)
echo "starting PostgreSQL $ver (cluster main)"
pg_ctlcluster --skip-systemctl-redirect "$ver" main start
for _ in $(seq 1 60); do
  pg_isready -q -h "$host" -p "$port" && exit 0
  sleep 1
done
echo "PostgreSQL did not become ready on $host:$port" >&2
exit 1
