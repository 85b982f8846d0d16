"""The guest server: OSWorld's in-VM HTTP API, run inside the desktop image (`python3 -m guest`).

Runs on Debian bookworm's python3 with its packages only (aiohttp 3.8, python-xlib, Pillow,
pyatspi); it must not import anything from the host side of this repository. The modules use
relative imports so the same files work as `vm.guest` on the host (for tests) and as `guest`
inside the image.
"""
