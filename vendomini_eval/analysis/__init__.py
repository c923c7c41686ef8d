"""Analysis of VendoMini eval logs (needs the `analysis` extra: lifelines, pandas, matplotlib, pyarrow).

`load_runs` reads the runs back from Inspect logs; `runs_table` / `steps_table` lay them out; `stats` holds
the survival statistics; `analyze` + `write_report` are `vendomini analyze`.
"""

from vendomini_eval.analysis.load import AnalysisInputError, LoadedLogs, RunRecord, Skipped, load_runs
from vendomini_eval.analysis.report import Analysis, analyze, write_report
from vendomini_eval.analysis.tables import runs_table, steps_table

__all__ = [
    "Analysis",
    "AnalysisInputError",
    "LoadedLogs",
    "RunRecord",
    "Skipped",
    "analyze",
    "load_runs",
    "runs_table",
    "steps_table",
    "write_report",
]
