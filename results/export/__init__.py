"""Run directories -> OpenAI chat fine-tuning JSONL (docs/design/exploratory-learning.md).

Formats: `exploratory` (ExACT's Exploratory Learning: the search replayed as traversals with
backtracks, answers prefixed with the judges' reasoning), `imitation` (the answer path only) and
`trajectories` (every attempt's steps, any agent). `check_file` validates a file against the
fine-tuning format's rules.
"""

from results.export.check import CheckResult, Problem, check_file
from results.export.exporter import ExportOptions, ExportReport, export_runs, output_paths
from results.export.limits import DEFAULT_LIMITS, Limits
from results.export.recorded import EXPORTS_FILE, read_exports

__all__ = ["DEFAULT_LIMITS", "EXPORTS_FILE", "CheckResult", "ExportOptions", "ExportReport", "Limits", "Problem",
           "check_file", "export_runs", "output_paths", "read_exports"]
