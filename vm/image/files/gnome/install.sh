#!/bin/sh
# Build step of the osworld desktop (Dockerfile, "osworld desktop" block): put the files of this
# folder where GNOME reads them and strip what a container must not start.
set -eu
here=/opt/gnome

# Schema defaults (dock, favourites, Yaru, font, no lock/blank/animations); --strict fails the
# build on a key or schema that does not exist.
install -m 644 "$here/90_osworld.gschema.override" /usr/share/glib-2.0/schemas/
glib-compile-schemas --strict /usr/share/glib-2.0/schemas

# A system dconf database under the user's: the Ctrl+Alt+T custom keybinding (relocatable
# schemas cannot take defaults from an override file).
mkdir -p /etc/dconf/profile /etc/dconf/db/local.d
printf 'user-db:user\nsystem-db:local\n' >/etc/dconf/profile/user
install -m 644 "$here/dconf-terminal.ini" /etc/dconf/db/local.d/10-terminal
dconf update

# The "ubuntu" session mode: Ubuntu's name for it, with Yaru's shell theme.
install -m 644 "$here/ubuntu.json" /usr/share/gnome-shell/modes/ubuntu.json
# The dock's first favourite under Chrome's desktop-file name (Chromium behind the wrapper).
install -m 644 "$here/google-chrome.desktop" /usr/share/applications/google-chrome.desktop

# systemd's postinst leaves /run/systemd/seats in the image; the shell then takes logind for
# granted and dies asking the system bus for it. Without it, it uses its own login manager.
rm -rf /run/systemd

# D-Bus-activated services with nothing to do in a sandbox that would otherwise start on the
# shell's or Files' first call and stay: disk/colour managers, the file indexer, the calendar
# server (evolution-data-server), systemd.
cd /usr/share/dbus-1
rm -f system-services/org.freedesktop.UDisks2.service \
      system-services/org.freedesktop.ColorManager.service \
      system-services/org.freedesktop.systemd1.service \
      services/org.freedesktop.systemd1.service \
      services/org.gtk.vfs.UDisks2VolumeMonitor.service \
      services/org.freedesktop.ColorHelper.service \
      services/org.freedesktop.Tracker3.* \
      services/org.gnome.Nautilus.Tracker3.* \
      services/org.gnome.evolution.dataserver.*

# The VM's starting state where a task would otherwise be solved before the agent acts (issue 24):
# videos default to GNOME Videos, not VLC; the volume is not at 100%; the time zone is not UTC
# (UTC+8, as OSWorld's own screenshot's clock suggests: docs/design/image.md).
install -m 644 "$here/mimeapps.list" /etc/xdg/mimeapps.list
mkdir -p /etc/pulse/default.pa.d
install -m 644 "$here/osworld-volume.pa" /etc/pulse/default.pa.d/osworld-volume.pa
ln -sf /usr/share/zoneinfo/Asia/Hong_Kong /etc/localtime
echo Asia/Hong_Kong >/etc/timezone
