"""The run report: a static site in `<run>/report/` (index + one page per finished task).

`build_report(run_dir)` is the entry point; `python -m harness report RUN_DIR` calls it.
See docs/design/report.md.
"""

from results.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
