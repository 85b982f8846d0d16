# Sourced by entrypoint.sh (user phase) when DESKTOP=osworld: the environment of a GNOME
# "Ubuntu on Xorg" session, which the guest server and every app it launches inherit.
export XDG_CURRENT_DESKTOP=ubuntu:GNOME
export XDG_SESSION_DESKTOP=ubuntu
export DESKTOP_SESSION=ubuntu
export GNOME_SHELL_SESSION_MODE=ubuntu
export XDG_SESSION_CLASS=user
