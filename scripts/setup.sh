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

# CRIU for forking live sandboxes (docs/design/fork.md). Debian 12's criu 3.17 fails on recent
# kernels ("vdso: Failed to fill self vdso symtable"), so when no working criu is on PATH build
# 4.1.1 from Debian's own source tarball, once per machine (cached in $criu_cache). Optional: a
# failed build leaves forks off and everything else as it was. CUA_NO_CRIU=1 skips it.
criu_version=4.1.1
criu_sha256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
# scripts/criu-desktop.patch, two fixes a desktop needs: read /proc/PID/limits when prlimit is
# refused (hosts that withhold CAP_SYS_RESOURCE from root, like this one, cannot otherwise dump
# processes of `user`), and session helpers that do not share their parent's fs_struct (else
# dbus-daemon cannot re-bind its socket once it has activated a service).
criu_cache=/var/cache/cua-harness/criu-$criu_version-$(sha256sum scripts/criu-desktop.patch | cut -c1-8)
install_criu() {
  local deps=(build-essential pkg-config libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler
    protobuf-compiler python3-protobuf libnl-3-dev libnet1-dev libcap-dev libbsd-dev
    libgnutls28-dev libaio-dev libnftables-dev uuid-dev)
  if [ ! -x "$criu_cache/criu" ]; then
    echo "setup: building CRIU $criu_version from Debian's source tarball (~2 min, once per machine)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${deps[@]}" >/dev/null
    local src
    src=$(mktemp -d)
    curl -fsSL -o "$src/criu.tar.xz" \
      "http://deb.debian.org/debian/pool/main/c/criu/criu_$criu_version.orig.tar.xz"
    echo "$criu_sha256  $src/criu.tar.xz" | sha256sum -c --quiet -
    tar -C "$src" -xJf "$src/criu.tar.xz"
    patch -s -d "$src/criu-$criu_version" -p1 <scripts/criu-desktop.patch
    make -C "$src/criu-$criu_version" -j"$(nproc)" criu >"$src/build.log" 2>&1 \
      || { tail -20 "$src/build.log" >&2; return 1; }
    mkdir -p "$criu_cache"
    install -m 0755 "$src/criu-$criu_version/criu/criu" "$criu_cache/criu"
    rm -rf "$src"
    find "$(dirname "$criu_cache")" -mindepth 1 -maxdepth 1 -name 'criu-*' ! -path "$criu_cache" \
      -exec rm -rf {} +  # builds of earlier patches
  fi
  install -m 0755 "$criu_cache/criu" /usr/local/sbin/criu
}
# The folders CRIU scans to name the inotify watches desktop apps hold (force-irmap below). Watches
# outside them and CRIU's own hints (/etc, /var/log, ...) stop a snapshot with "fsnotify: Can't
# dump that handle". The osworld desktop's (polkitd's rules.d; gsd-xsettings' fonts and poppler;
# thumbnailers; gsd's gtk-modules) were found by listing its processes' watches
# (docs/design/fork.md). Kept small: CRIU walks a folder's whole tree on a miss.
criu_scan_paths=(
  /usr/share/dbus-1 /usr/share/applications /usr/local/share /usr/share/zoneinfo
  /usr/share/fonts /usr/share/poppler /usr/share/thumbnailers /usr/lib/gnome-settings-daemon-3.0
  /usr/share/polkit-1
  /run/systemd /home /tmp /root
)
write_criu_conf() {
  # runc hands this file to CRIU. Desktop apps hold inotify watches whose overlayfs handles CRIU
  # cannot reopen; force-irmap finds them by path under criu_scan_paths instead (first match
  # wins, so the folders apps watch come first). Rewritten while it is ours, left alone otherwise.
  local marker='# written by cua-harness scripts/setup.sh (docs/design/fork.md)'
  if [ ! -f /etc/criu/runc.conf ] || head -1 /etc/criu/runc.conf | grep -qF "$marker"; then
    mkdir -p /etc/criu
    # ghost-limit: open files already deleted go into the image (Chromium keeps 4 MB ones);
    # file-locks: Chromium and Thunderbird lock their profiles; link-remap: a fork's dconf database
    # replaced since its restore is still mapped from the snapshot's image layer, where it keeps a
    # link (a fork of a fork failed "Can't create link remap for .../dconf/user").
    printf '%s\n' "$marker" force-irmap file-locks link-remap 'ghost-limit 32M' \
      "${criu_scan_paths[@]/#/irmap-scan-path }" >/etc/criu/runc.conf.new
    mv /etc/criu/runc.conf.new /etc/criu/runc.conf
  fi
}
criu_works() { command -v criu >/dev/null 2>&1 && criu check >/dev/null 2>&1; }
# An earlier build of ours (/usr/local/sbin) that differs from the current one is rebuilt too.
criu_stale() { [ -x /usr/local/sbin/criu ] && ! cmp -s "$criu_cache/criu" /usr/local/sbin/criu; }
if [ "${CUA_NO_CRIU:-0}" != 1 ]; then
  if ! criu_works || criu_stale; then
    install_criu || true
  fi
  if criu_works; then write_criu_conf
  else echo "setup: no working CRIU: forking sandboxes is off (state restore uses replay)" >&2; fi
fi

# inotify: the sandboxes share the host's user namespace, so their processes' inotify instances
# count against one per-uid limit (uid 1000; root for forks, which CRIU restores as root), 128 on
# stock Debian: ~8 osworld desktops with apps open (docs/design/image.md, vm/host_limits.py). Raised
# live and in /etc/sysctl.d (for the next boot), never lowered.
raise_inotify() {
  local conf=/etc/sysctl.d/60-cua-harness-inotify.conf said=() saved="" joined name want have
  for name in max_user_instances:8192 max_user_watches:524288; do
    want=${name#*:} name=${name%%:*}
    have=$(cat "/proc/sys/fs/inotify/$name" 2>/dev/null || echo 0)
    if [ "$have" -ge "$want" ]; then said+=("fs.inotify.$name=$have"); continue; fi
    if echo "$want" 2>/dev/null >"/proc/sys/fs/inotify/$name"; then
      said+=("fs.inotify.$name $have -> $want")
      { grep -v "^fs.inotify.$name *=" "$conf" 2>/dev/null || true; echo "fs.inotify.$name = $want"; } >"$conf.new" \
        && mv "$conf.new" "$conf" && saved=" (raised now and in $conf)" || true
    else
      said+=("fs.inotify.$name=$have (could not raise it: \`sysctl -w fs.inotify.$name=$want\` as root on the host)")
    fi
  done
  printf -v joined '%s, ' "${said[@]}"
  echo "setup: inotify limits per user: ${joined%, }$saved" >&2
}
raise_inotify

if ! docker info >/dev/null 2>&1; then
  # --experimental enables checkpoint/restore (forks); it changes nothing else we use.
  echo "setup: starting dockerd --experimental --bridge=none --iptables=false" >&2
  nohup dockerd --experimental --bridge=none --iptables=false >/var/log/cua-harness-dockerd.log 2>&1 &
  echo $! > /run/cua-harness-dockerd.pid
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not come up; see /var/log/cua-harness-dockerd.log" >&2; exit 1; }
fi
echo "setup: ready (docker $(docker version --format '{{.Server.Version}}'))" >&2
