"""Built-in getters; importing this package registers them."""

from scoring.getters import commands, desktop, files, rules  # noqa: F401
