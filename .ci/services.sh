# Sourced by .ci/run: make sure the databases the tests talk to are up on 127.0.0.1,
# starting them (and installing them from Debian's packages) when they are not.
set -euo pipefail

_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

_wait_port() {
  for _ in $(seq 1 60); do _port_open "$1" && return 0; sleep 0.5; done
  echo "service on port $1 did not come up" >&2
  return 1
}

_apt() {
  [ -n "${_APT_UPDATED:-}" ] || { apt-get update -qq; _APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  _port_open 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    _apt postgresql
    local conf; conf=$(ls -d /etc/postgresql/*/main)
    # Tests connect as postgres over TCP without a password (loopback only).
    sed -i 's/^\(host.*127.0.0.1\/32\s*\)\S*$/\1trust/; s/^\(host.*::1\/128\s*\)\S*$/\1trust/' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  _wait_port 5432
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
}

ensure_mariadb() {
  _port_open 3306 && return 0
  command -v mariadbd >/dev/null 2>&1 || _apt mariadb-server
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
    --bind-address=127.0.0.1
  _wait_port 3306
  mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test" 2>/dev/null || true
}

ensure_chromium() {
  # The Browser component drives Debian's Chromium (no browser download at run time).
  [ -x /usr/bin/chromium ] || _apt chromium
}
