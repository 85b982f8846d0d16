"""The run directory: journal, per-task records in OSWorld's layout, resume and summaries.

Public API: `RunStore` (the single writer of a run directory), `Attempt`, `read_run`.
See docs/design/run-directory.md for the layout and the crash-safety argument.
"""

from results.attempt import Attempt
from results.read import RunView, read_run
from results.store import DuplicateResultError, RunStore

__all__ = ["Attempt", "DuplicateResultError", "RunStore", "RunView", "read_run"]
