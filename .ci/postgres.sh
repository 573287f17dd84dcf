#!/usr/bin/env bash
# Makes a local PostgreSQL server ready for the tests and the demo: installs
# the Debian package if needed, starts the newest installed cluster "main",
# waits for it, and sets the postgres role's password to "postgres" so that
# postgres://postgres:postgres@127.0.0.1:<port>/postgres works. When the
# Docker bridge docker0 exists, the server also listens on its gateway
# address and admits password logins from the bridge's subnet, so that test
# containers reach it as the app's containers reach their database.
# Idempotent.
set -euo pipefail

die() {
	echo "postgres.sh: $*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
	echo "postgres.sh: installing postgresql from Debian"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -q || die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql ||
		die "apt-get install postgresql failed"
fi

version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
[ -n "$version" ] || die "no PostgreSQL server found under /usr/lib/postgresql"

# pg_lsclusters -h: version cluster port status owner datadir logfile
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
	echo "postgres.sh: creating cluster $version main"
	as_root pg_createcluster "$version" main || die "pg_createcluster $version main failed"
fi
read -r port status < <(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3, $4 }') ||
	die "cluster $version main not listed by pg_lsclusters"
if [ "$status" != "online" ]; then
	echo "postgres.sh: starting cluster $version main"
	as_root pg_ctlcluster "$version" main start ||
		die "pg_ctlcluster $version main start failed; see /var/log/postgresql/postgresql-$version-main.log"
fi

# The Docker bridge: containers reach the server at the bridge's gateway.
bridge=$(ip -4 -o addr show docker0 2>/dev/null | awk '{ print $4; exit }') || true
if [ -n "$bridge" ]; then
	gateway=${bridge%/*}
	confdir=/etc/postgresql/$version/main
	hba="host all all $bridge scram-sha-256 # togather-chatops tests: docker0"
	changed=
	if ! grep -qF "$hba" "$confdir/pg_hba.conf"; then
		echo "$hba" | as_root tee -a "$confdir/pg_hba.conf" >/dev/null
		changed=1
	fi
	conf="$confdir/conf.d/togather-chatops.conf"
	want="listen_addresses = 'localhost,$gateway'"
	if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
		as_root mkdir -p "$confdir/conf.d"
		echo "$want" | as_root tee "$conf" >/dev/null
		changed=1
	fi
	if [ -n "$changed" ]; then
		echo "postgres.sh: restarting cluster $version main to listen on the Docker bridge ($gateway)"
		as_root pg_ctlcluster "$version" main restart || die "pg_ctlcluster $version main restart failed"
	fi
fi

ready=
for _ in $(seq 1 60); do
	if pg_isready -q -h 127.0.0.1 -p "$port" -t 1; then
		ready=1
		break
	fi
	sleep 0.5
done
[ -n "$ready" ] || die "PostgreSQL $version did not accept connections on 127.0.0.1:$port within 30s"

(cd / && as_root su postgres -c "psql -X -q -p $port -v ON_ERROR_STOP=1 -c \"ALTER ROLE postgres PASSWORD 'postgres'\"") ||
	die "could not set the postgres role's password"

PGPASSWORD=postgres psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc 'SELECT 1' >/dev/null ||
	die "password login as postgres on 127.0.0.1:$port failed; check pg_hba.conf"

echo "postgres.sh: PostgreSQL $version ready at postgres://postgres:postgres@127.0.0.1:$port/postgres"
