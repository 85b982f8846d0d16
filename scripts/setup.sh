#!/usr/bin/env bash
# Idempotent machine set-up for a fresh Debian 12 host (root): Docker engine, debootstrap,
# the harness and its Python dependencies, a running dockerd. Safe to run again.
# Writes the PID of a dockerd it started to /run/cua-harness-dockerd.pid so callers can stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # headless browser for the report tests
# The image's VS Code is built on the host (vm/image/vscode_bundle.py): npm, and node-gyp's compilers
# plus the Kerberos headers for code-server's native modules.
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
[ -e /usr/include/gssapi/gssapi.h ] || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The ray extra too: the cluster tests (pytest -m ray) run in CI.
if ! python3 -c "import harness, aiodocker, pytest_asyncio, importlinter, ray" >/dev/null 2>&1 \
   || [ "${CUA_REINSTALL:-0}" = 1 ]; then
  echo "setup: installing the harness (pip install -e '.[dev,ray]')" >&2
  python3 -m pip install -q -e '.[dev,ray]'
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd --bridge=none --iptables=false" >&2
  nohup dockerd --bridge=none --iptables=false >/var/log/cua-harness-dockerd.log 2>&1 &
  echo $! > /run/cua-harness-dockerd.pid
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not come up; see /var/log/cua-harness-dockerd.log" >&2; exit 1; }
fi
echo "setup: ready (docker $(docker version --format '{{.Server.Version}}'))" >&2
