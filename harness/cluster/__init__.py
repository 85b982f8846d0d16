"""Running one evaluation across a Ray cluster (docs/design/cluster.md).

The head process stays the single scheduler and the single writer of the run directory; each
node that offers the custom resource ``cua_sandbox`` hosts one worker actor with its own event
loop and sandbox pool. Nothing outside this package imports Ray, and this package is imported
only when a run asks for ``--ray``.
"""
