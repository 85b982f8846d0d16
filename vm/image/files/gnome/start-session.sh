#!/bin/bash
# The osworld desktop (DESKTOP=osworld): GNOME Shell 43 as the X11 window manager and compositor
# on the entrypoint's Xvfb, in the "ubuntu" session mode (/usr/share/gnome-shell/modes/ubuntu.json:
# Yaru shell theme), with Dash to Dock and desktop icons (DING) from the schema defaults in
# 90_osworld.gschema.override. Run by entrypoint.sh as `user` once X accepts connections, with the
# session bus, DISPLAY and session-env.sh already exported. No gnome-session: nothing here needs
# it, and the shell runs without a session manager.
set -eu
log="$XDG_RUNTIME_DIR"
cd "$HOME"  # what the dock, Ctrl+Alt+T and the shell start in

# Ready once the bar and dock are up and mutter's key grabs have settled (mark-ready.py); sandboxes
# of this desktop are handed out only then (vm/docker.py asks /health?desktop=1), so no task starts
# on a black screen or presses keys nobody listens to. It records the X server's key grabs: the
# shell starts once it says "recording" on fd 3 (EOF if it failed: the shell starts anyway).
started="$log/mark-ready.fifo"
rm -f "$started" && mkfifo "$started"
python3 /opt/gnome/mark-ready.py 3>"$started" >"$log/mark-ready.log" 2>&1 &

# XSETTINGS for GTK apps (Yaru theme and icons, Ubuntu font, animations off) from the same
# gsettings the shell reads. Of the settings daemon's plugins only this and media-keys run: power,
# lock, housekeeping and the rest stay off (no blanking, no suspend, no pop-ups).
/usr/libexec/gsd-xsettings >"$log/gsd-xsettings.log" 2>&1 &
# Keyboard shortcuts outside the window manager: Ctrl+Alt+T (dconf-terminal.ini), volume keys.
/usr/libexec/gsd-media-keys >"$log/gsd-media-keys.log" 2>&1 &

read -r -t 30 _ <"$started" || echo "start-session: mark-ready.py is not recording key grabs" >&2
rm -f "$started"

# Software GL on Xvfb (llvmpipe); one thread is enough for a static desktop and keeps idle CPU low.
export LIBGL_ALWAYS_SOFTWARE=1 LP_NUM_THREADS=1
gnome-shell --x11 --replace --sm-disable --mode=ubuntu >"$log/gnome-shell.log" 2>&1 &
shell=$!
wait "$shell"
