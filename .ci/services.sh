#!/usr/bin/env bash
# Installs (from Debian, when missing) and starts the services the tests and
# the demo need: PostgreSQL, Caddy and the OpenSSH server (the tests start
# their own sshd on loopback), iproute2 and setpriv for the network-namespace
# test; checks the Docker engine answers.
# Idempotent: a second run is a fast no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v pg_dump >/dev/null 2>&1 || need+=(postgresql-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)  # the remote snapshot bench's baseline
command -v ip >/dev/null 2>&1 || need+=(iproute2)         # network namespaces of the isolation test
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "services: installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

bash .ci/postgres.sh

if ! caddy version >/dev/null 2>&1; then
  echo "services: caddy is installed but does not run" >&2
  exit 1
fi

if ! docker info >/dev/null 2>&1 && ! curl -fsS --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; then
  echo "services: the Docker engine does not answer on /var/run/docker.sock" >&2
  exit 1
fi
echo "services: PostgreSQL, Caddy, sshd and Docker are ready"
