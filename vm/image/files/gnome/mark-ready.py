#!/usr/bin/python3
"""Mark the osworld desktop ready: wait (no polling) until GNOME Shell has reserved its top bar and
dock, i.e. the root window's _NET_WORKAREA no longer starts at 0,0, then set the root property
CUA_DESKTOP_READY, which the guest's `/health?desktop=1` waits for. Run by start-session.sh."""

import sys

from Xlib import X, Xatom, display

dpy = display.Display()
root = dpy.screen().root
workarea = dpy.intern_atom("_NET_WORKAREA")
root.change_attributes(event_mask=X.PropertyChangeMask)


def reserved() -> bool:
    prop = root.get_full_property(workarea, Xatom.CARDINAL)
    return prop is not None and len(prop.value) >= 2 and (prop.value[0] > 0 or prop.value[1] > 0)


while not reserved():
    dpy.next_event()  # blocks until the next root property change
root.change_property(dpy.intern_atom("CUA_DESKTOP_READY"), Xatom.STRING, 8, b"1")
dpy.sync()
sys.exit(0)
