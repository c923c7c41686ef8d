"""Analysis of VendoMini eval logs (needs the `analysis` extra: lifelines, pandas, matplotlib, pyarrow).

`load_runs` reads the runs back from Inspect logs; `runs_table` / `steps_table` lay them out; `stats` holds
the survival statistics; `analyze` + `write_report` are `vendomini analyze`; `load_thresholds` and
`check_thresholds` its `--thresholds` gate.
"""

from vendomini_eval.analysis.load import AnalysisInputError, LoadedLogs, RunRecord, Skipped, load_runs
from vendomini_eval.analysis.report import Analysis, analyze, write_report
from vendomini_eval.analysis.tables import runs_table, steps_table
from vendomini_eval.analysis.thresholds import (
    Thresholds,
    ThresholdsError,
    ThresholdsResult,
    check_thresholds,
    load_thresholds,
    resolve_thresholds,
)

__all__ = [
    "Analysis",
    "AnalysisInputError",
    "LoadedLogs",
    "RunRecord",
    "Skipped",
    "Thresholds",
    "ThresholdsError",
    "ThresholdsResult",
    "analyze",
    "check_thresholds",
    "load_runs",
    "load_thresholds",
    "resolve_thresholds",
    "runs_table",
    "steps_table",
    "write_report",
]
