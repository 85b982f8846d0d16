#!/bin/bash
# Sandbox entrypoint (under tini). Contract, kept stable for vm/docker.py:
#   env GUEST_TOKEN, GUEST_OPEN, GUEST_LISTEN (unix:/path | tcp:HOST:PORT),
#   SCREEN_WIDTH/HEIGHT/DEPTH; the host bind-mounts a folder at /run/guest; no args.
# Root phase: lock the socket folder, run this script as `user` (the desktop phase), then exec the
# guest server as root; it answers /health 200 as soon as X accepts connections.
# Desktop phase (`user`): start X, the session bus, AT-SPI and the window manager, and return.
# Why the guest is root: the agent's code runs as `user`, who must not read the token (/proc/PID/
# environ is readable by the same uid only) nor replace the socket; the guest still runs every
# child and file operation as `user` (GUEST_RUN_AS, vm/guest/user.py). No fixed sleeps anywhere.
set -eu

# The desktop's session, for both phases: the guest's children inherit it.
export HOME=/home/user USER=user LOGNAME=user SHELL=/bin/bash

export DISPLAY=:0
export XDG_RUNTIME_DIR=/run/user/1000
export XDG_SESSION_TYPE=x11
# xdg-open then hands files to `gio open`, which honours ~/.config/mimeapps.list (the generic
# fallback would open text files with run-mailcap in a terminal).
export XDG_CURRENT_DESKTOP=XFCE
export XAUTHORITY="$HOME/.Xauthority"
# Accessibility on for GTK (GTK 3 has the bridge built in and skips these names) and LibreOffice.
export GTK_MODULES=gail:atk-bridge
export SAL_USE_VCLPLUGIN=gtk3
unset NO_AT_BRIDGE
# ---- osworld desktop (issue 24): DESKTOP=osworld (default) is GNOME Shell as on OSWorld's VM,
# DESKTOP=light is openbox. The session's environment is the guest's, so apps it launches get it.
desktop="${DESKTOP:-osworld}"
export DESKTOP="$desktop"  # apps adapt to it (the google-chrome wrapper maximizes on osworld)
case "$desktop" in
    osworld) . /opt/gnome/session-env.sh ;;
    light) ;;
    *) echo "entrypoint: DESKTOP must be osworld or light, not '$desktop'" >&2; exit 2 ;;
esac
# ---- end osworld desktop

# Session bus (started in the desktop phase).
export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"

if [ "$(id -u)" = 0 ]; then
    # --network none leaves the hostname unresolvable, which makes every sudo complain and stall.
    grep -qw "$(hostname)" /etc/hosts 2>/dev/null || echo "127.0.1.1 $(hostname)" >>/etc/hosts || true
    # The user's runtime dir where a systemd login would put it: OSWorld's steps hard-code the
    # session bus as unix:path=/run/user/1000/bus.
    mkdir -p -m 700 /run/user/1000 && chown user:user /run/user/1000
    listen="${GUEST_LISTEN:-unix:/run/guest/guest.sock}"
    # The socket folder: nobody but root (and the host user who made it) may add, rename or
    # remove entries, so `user` cannot put a socket of its own in the guest's place. A host user
    # with uid 1000 would be `user` here: then root takes the folder.
    case "$listen" in
        unix:*) sockdir="$(dirname "${listen#unix:}")"
                mkdir -p "$sockdir" && chmod 0755 "$sockdir"
                [ "$(stat -c %u "$sockdir")" != 1000 ] || chown 0:0 "$sockdir" ;;
    esac
    # ---- osworld desktop (issue 24): GNOME Shell wants a system bus (it finds no logind, GDM or
    # AccountsService there and carries on).
    if [ "$desktop" = osworld ]; then
        mkdir -p /run/dbus && rm -f /run/dbus/pid && dbus-daemon --system --fork
    fi
    # ---- end osworld desktop
    # The desktop phase, without the token; it returns once the session bus listens.
    ( unset GUEST_TOKEN; exec setpriv --reuid=user --regid=user --init-groups "$0" )
    cd "$HOME"
    GUEST_RUN_AS=user PYTHONPATH=/opt/guest exec python3 -m guest
fi

mkdir -p -m 700 "$XDG_RUNTIME_DIR"
# X accepts everyone local (-ac), but python-xlib (pyautogui) prints a warning on stdout when
# ~/.Xauthority has no entry for the display: give it one.
touch "$XAUTHORITY"
xauth -q -f "$XAUTHORITY" add ":0" MIT-MAGIC-COOKIE-1 "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# X: -displayfd writes the display number once the server accepts connections; -noreset keeps
# it from resetting (and refusing connections) whenever its last client disconnects.
xready="$XDG_RUNTIME_DIR/x-ready"
rm -f "$xready" /tmp/.X0-lock /tmp/.X11-unix/X0 && mkfifo "$xready"
Xvfb :0 -screen 0 "${SCREEN_WIDTH:-1920}x${SCREEN_HEIGHT:-1080}x${SCREEN_DEPTH:-24}" \
    -nolisten tcp -noreset -ac -dpi 96 +extension RANDR -displayfd 9 9>"$xready" \
    >"$XDG_RUNTIME_DIR/xvfb.log" 2>&1 &

# Session bus: --fork returns once the bus is listening.
dbus-daemon --session --fork --nopidfile --nosyslog --address="$DBUS_SESSION_BUS_ADDRESS"

# Desktop pieces that need X run in the background so the server starts in parallel.
(
    read -r -t 30 _display <"$xready" || { echo "entrypoint: Xvfb did not start" >&2; exit 1; }
    rm -f "$xready"
    /usr/libexec/at-spi-bus-launcher --launch-immediately >"$XDG_RUNTIME_DIR/at-spi.log" 2>&1 &
    [ "$desktop" = osworld ] && exec /opt/gnome/start-session.sh  # issue 24
    xsetroot -solid '#3b4a5a' || true
    exec openbox --sm-disable >"$XDG_RUNTIME_DIR/openbox.log" 2>&1
) &
