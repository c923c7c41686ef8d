"""Reading runs back from Inspect logs: every `.eval` log below a directory, headers first, then only the
sample fields the analysis needs (metadata and the store's EpisodeRecord); transcripts are never parsed.

What cannot be used is counted, with the reason: an unreadable file (empty, not a zip archive, truncated, not
an Inspect log), a log that did not finish (`started`, `cancelled`, `error`) or holds no sample, a sample with
an error, without an episode or with a summary that does not validate, and a retried sample that a newer
successful log holds again (eval_set retries and resumed shards can leave one run in two logs). Two logs of
one task, model and sample that ran different conditions are not a retry: the analysis stops, naming them.
`LoadedLogs.skip_lines` gives one line per file.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from vendomini_eval.budget import LEDGER_FILE, Usage
from vendomini_eval.condition import Condition
from vendomini_eval.results import EpisodeSummary

LOG_SUFFIX = ".eval"
INSPECT_BOOKKEEPING = frozenset({"logs.json", "eval-set.json", ".eval-set-id", ".vendomini-sweep.lock",
                                 LEDGER_FILE})  # fmt: skip
"""Files that Inspect (and `vendomini run`: its lock, `sweep.run.LOCK_FILE`, and its spend ledger) write beside
the logs: expected, so not reported as skipped."""
SAMPLE_FIELDS_NOT_READ = {"events", "messages", "attachments", "events_data", "timelines"}
"""The bulk of a sample; the analysis reads metadata and the store only."""
HEAD_FIELDS = frozenset({"metadata", "store"})
HEAD_CHUNK = 1 << 20
"""Bytes first read of a sample: the metadata and store of a 1,000-step run (about 300 kB) at once, so that its
store is parsed once (a store cut by the read is parsed again after the next)."""
_OBJECT_START = re.compile(r"\s*\{")
_NEXT_KEY = re.compile(r'\s*,?\s*"((?:[^"\\]|\\.)*)"\s*:\s*')
RECORD = "EpisodeRecord:"
ZIP_MAGIC = b"PK\x03\x04"
"""How a zip archive (an `.eval` log is one) begins."""
SAMPLES_SHOWN = 5
"""Sample names shown per reason in a skip line; the report's table lists them all."""


class AnalysisInputError(ValueError):
    """The log directory cannot be analysed (missing, empty, no usable run). `skipped`: the files left out on
    the way (for the user: the error alone may not say which files were looked at)."""

    def __init__(self, message: str, skipped: list[Skipped] | None = None) -> None:
        super().__init__(message)
        self.skipped = list(skipped or [])


@dataclass(frozen=True)
class Skipped:
    """A file or sample left out of the analysis, and why."""

    path: str
    reason: str
    sample: str | None = None


@dataclass(frozen=True)
class LogHeader:
    """What a log says about itself: which task on which model, and whether it finished."""

    path: str
    task: str
    model: str
    model_args: dict[str, Any]
    status: str
    created: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class RunRecord:
    """One run (a sample in one epoch) as stored by the solver, with where it came from."""

    log: LogHeader
    sample_id: str
    epoch: int
    metadata: dict[str, Any]
    summary: EpisodeSummary
    """The run's `Episode.summary()`, read back from the store."""
    record: dict[str, Any]
    """The other EpisodeRecord fields (condition, seed, outcome, limit, trace), without the key prefix."""
    completed_at: str
    usage: Usage = field(default_factory=lambda: Usage())
    """What the run cost: tokens, cost and time, from the log's sample summary."""

    @property
    def model_label(self) -> str:
        return model_label(self.log.model, self.log.model_args)

    @property
    def run_id(self) -> str:
        return f"{self.model_label}/{self.log.task}/{self.sample_id}/e{self.epoch}"

    @property
    def identity(self) -> tuple[str, str, str, int]:
        """Same task, model (with its arguments), sample and epoch: the same run, retried."""
        return (self.log.task, self.model_label, self.sample_id, self.epoch)


@dataclass
class LoadedLogs:
    """The usable runs below a log directory, plus every log read and everything skipped."""

    log_dir: str
    runs: list[RunRecord] = field(default_factory=list)
    logs: list[LogHeader] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip_counts(self) -> dict[str, int]:
        """Skips by kind of reason (the text before the first colon)."""
        counts: dict[str, int] = {}
        for skip in self.skipped:
            kind = skip.reason.split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def skip_lines(self) -> list[str]:
        """One line per file with a skip, in the order first skipped: see `skip_lines`."""
        return skip_lines(self.skipped)


def skip_lines(skipped: list[Skipped]) -> list[str]:
    """One line per file that was skipped whole or in part, in the order first skipped: `skipped PATH: REASON`
    for a whole file; for samples, `skipped PATH: N samples: REASON (names); ...`, reasons in order, at most
    SAMPLES_SHOWN names each."""
    whole: dict[str, str] = {}
    samples: dict[str, dict[str, list[str]]] = {}
    for skip in skipped:
        if skip.sample is None:
            whole.setdefault(skip.path, skip.reason)
        else:
            samples.setdefault(skip.path, {}).setdefault(skip.reason, []).append(skip.sample)
        samples.setdefault(skip.path, {})  # keeps the order of first skip across both kinds
    lines = []
    for path, by_reason in samples.items():
        parts = [whole[path]] if path in whole else []
        if by_reason:
            n = sum(len(names) for names in by_reason.values())
            shown = [f"{reason} ({_names(names)})" for reason, names in by_reason.items()]
            parts.append(f"{n} sample{'s' * (n != 1)}: {'; '.join(shown)}")
        lines.append(f"skipped {path}: {'; '.join(parts)}")
    return lines


def _names(names: list[str]) -> str:
    more = len(names) - SAMPLES_SHOWN
    return ", ".join(names[:SAMPLES_SHOWN]) + (f", +{more} more" if more > 0 else "")


def model_label(model: str, model_args: dict[str, Any] | None) -> str:
    """The model with its arguments: `vendomini/heuristic` and `vendomini/heuristic[fault=stall,onset=20]` are
    different subjects (the scripted fault variants differ only in their model arguments)."""
    if not model_args:
        return model
    args = ",".join(f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
                    for key, value in sorted(model_args.items()))  # fmt: skip
    return f"{model}[{args}]"


def load_runs(log_dir: str | Path) -> LoadedLogs:
    """Every usable run in the `.eval` logs below `log_dir` (recursively: eval-set dirs, shard dirs, phases).

    Raises AnalysisInputError when the directory is missing or holds no `.eval` log at all. A directory whose
    logs all failed loads with no runs and every skip listed (the report says why it is empty)."""
    root = Path(log_dir)
    if not root.is_dir():
        raise AnalysisInputError(f"{log_dir}: no such directory")
    loaded = LoadedLogs(log_dir=str(log_dir))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    log_files = [p for p in files if p.suffix == LOG_SUFFIX]
    for other in files:
        if other.suffix != LOG_SUFFIX and other.name not in INSPECT_BOOKKEEPING:
            loaded.skipped.append(Skipped(str(other), "not a log: not a .eval file"))
    if not log_files:
        raise AnalysisInputError(f"{log_dir}: no .eval logs below this directory", loaded.skipped)

    newest: dict[tuple[str, str, str, int], RunRecord] = {}
    for header, items in _read_logs(log_files):
        if header is not None:
            loaded.logs.append(header)
        for item in items:
            if isinstance(item, Skipped):
                loaded.skipped.append(item)
                continue
            previous = newest.get(item.identity)
            if previous is None:
                newest[item.identity] = item
                continue
            _same_condition(previous, item)
            keep, drop = (item, previous) if _order(item) > _order(previous) else (previous, item)
            newest[item.identity] = keep
            name = f"{item.sample_id}/e{item.epoch}"
            loaded.skipped.append(Skipped(drop.log.path, f"duplicate: newer copy in {keep.log.path}", name))
    loaded.runs = sorted(newest.values(), key=lambda r: r.run_id)
    return loaded


_DEFAULT_CONDITION = Condition().model_dump(mode="json")


def _condition(run: RunRecord) -> dict[str, Any]:
    """The run's condition as stored, with a knob added since the log was written at its default."""
    return {**_DEFAULT_CONDITION, **(run.record.get("condition") or run.metadata.get("condition") or {})}


def _same_condition(first: RunRecord, second: RunRecord) -> None:
    """Two logs of one task, model, sample and epoch are one run retried only if they ran one condition. Runs of
    conditions that differ in a knob set outside the grid (`-T max_days=30`, then `-T max_days=60`) share the task's
    name: keeping the newer would drop the other condition's runs without a word."""
    a, b = _condition(first), _condition(second)
    if a != b:
        knobs = sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))
        shown = ", ".join(f"{key}: {a.get(key)!r} vs {b.get(key)!r}" for key in knobs)
        raise AnalysisInputError(
            f"{first.log.path} and {second.log.path}: task {first.log.task} ran two conditions under one name "
            f"({shown}); analyze them from separate log directories, or make the knob a grid axis"
        )


def _read_logs(paths: list[Path]) -> Iterator[tuple[LogHeader | None, list[RunRecord | Skipped]]]:
    """`_read_log` of each path, in their order. Decoding the stores is most of an analysis's time at phase-2
    size (5,000 runs: two minutes) and each log is independent, so several logs are read at once, a process
    per core; the runs come back as their numpy arrays, not as lists of Python numbers."""
    workers = min(_cores(), len(paths))
    if workers < 2:
        yield from map(_read_log, paths)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_read_log, paths)


def _cores() -> int:
    """The cores this process may run on (a SLURM job's share of a node, not the whole node)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _read_log(path: Path) -> tuple[LogHeader | None, list[RunRecord | Skipped]]:
    """One log's header (None when unreadable) and, in the order found, its runs and what was skipped."""
    from inspect_ai.log import read_eval_log

    try:
        header_log = read_eval_log(str(path), header_only=True)
    except Exception as error:  # a truncated or foreign file: say which and go on
        return None, [Skipped(str(path), f"unreadable: {_unreadable(path, error)}")]
    header = LogHeader(
        path=str(path),
        task=header_log.eval.task,
        model=str(header_log.eval.model),
        model_args=dict(header_log.eval.model_args or {}),
        status=header_log.status,
        created=str(header_log.eval.created),
        metadata=dict(header_log.eval.metadata or {}),
    )
    if header.status != "success":
        why = f": {_one_line(header_log.error.message, path)}" if header_log.error else ""
        return header, [Skipped(str(path), f"log {header.status}{why}")]
    try:
        samples = list(_read_samples(path))
    except Exception as error:  # a finished header over damaged samples: say which and go on
        why = f"the header says success but the samples cannot be read ({_message(error, path)})"
        return header, [Skipped(str(path), f"unreadable: {why}")]
    if not samples:
        return header, [Skipped(str(path), "no samples: the log finished without any")]
    items: list[RunRecord | Skipped] = []
    for sample in samples:
        name = f"{sample.id}/e{sample.epoch}"
        if sample.error is not None:
            items.append(Skipped(str(path), f"sample error: {_one_line(sample.error, path)}", name))
            continue
        store = sample.head.get("store") or {}
        record = {key[len(RECORD) :]: value for key, value in store.items() if key.startswith(RECORD)}
        stored = record.pop("summary", None)
        trace = record.get("trace")
        if isinstance(trace, dict) and isinstance(trace.get("columns"), dict):
            trace["columns"] = {name: _column_array(values) for name, values in trace["columns"].items()}
        if not stored:
            outcome = record.get("outcome") or "none"
            items.append(Skipped(str(path), f"no episode: outcome {outcome}", name))
            continue
        try:
            summary = EpisodeSummary.model_validate(stored)
        except ValidationError as error:  # written by another version of the suite, or damaged
            items.append(Skipped(str(path), f"unreadable summary: {_first_error(error)}", name))
            continue
        items.append(RunRecord(
            log=header,
            sample_id=str(sample.id),
            epoch=int(sample.epoch),
            metadata=dict(sample.head.get("metadata") or {}),
            summary=summary,
            record=record,
            completed_at=str(sample.completed_at or ""),
            usage=sample.usage,
        ))  # fmt: skip
    return header, items


def _column_array(values: Any) -> Any:
    """A trace column as a numpy array: 8 bytes a number, where a list of Python numbers takes about 32 (a
    phase's traces would not fit in memory); text and missing values as an array of objects."""
    if not isinstance(values, list):
        return values
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array
    texts: dict[str, str] = {}  # one object per distinct text (a tool, an error kind): JSON makes one a value
    return np.array([texts.setdefault(v, v) if isinstance(v, str) else v for v in values], dtype=object)


def _order(run: RunRecord) -> tuple[str, str]:
    return (run.log.created, run.completed_at)


def _unreadable(path: Path, error: Exception) -> str:
    """Why Inspect could not read a log's header, in words: what the file is (its reader's messages, such as
    'EOCD not found', say little), then the message where it adds something."""
    try:
        with path.open("rb") as stream:
            start = stream.read(len(ZIP_MAGIC))
    except OSError as os_error:
        return f"cannot open: {os_error.strerror or os_error}"
    if not start:
        return "empty file (0 bytes)"
    if start != ZIP_MAGIC:
        return "not a zip archive, so not an Inspect .eval log"
    if not zipfile.is_zipfile(path):
        return "truncated zip archive: its end (the central directory) is missing; a write or copy cut short"
    return f"a zip archive that Inspect cannot read as a log ({_message(error, path)})"


def _first_error(error: ValidationError) -> str:
    """The first validation error as `field.path: message`, and how many more there are."""
    first, more = error.errors()[0], error.error_count() - 1
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" + (f" (+{more} more)" if more else "")


def _message(error: BaseException, path: Path) -> str:
    """An exception as `Type: message` on one line, without the file's path (the skip line names it)."""
    message = _one_line(str(error), path)
    return f"{type(error).__name__}: {message}" if message else f"{type(error).__name__} without a message"


def _one_line(text: str, path: Path, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters, without the file's path (the skip line names it)."""
    text = " ".join(str(text).replace(str(path), "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class SampleHead:
    """What the analysis reads of a sample: identity, error and end time from the log's sample summaries, and
    the sample's own top-level fields up to its store (metadata and store among them)."""

    id: str | int
    epoch: int
    error: str | None
    completed_at: str | None
    head: dict[str, Any]
    usage: Usage


def _read_samples(path: Path) -> Iterator[SampleHead]:
    """The samples of a finished `.eval` log. A sample's JSON holds its events after its store, and the events
    are nearly all of its bytes (about 4 MB of 4.2 for a 500-step run): the sample is decompressed and parsed
    only up to its store. A sample whose store is not found that way is read whole by Inspect."""
    import zipfile_zstd  # noqa: F401  -- Inspect's own dependency: lets zipfile read its zstd-compressed members
    from inspect_ai.log import read_eval_log_sample, read_eval_log_sample_summaries

    with zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
        for summary in read_eval_log_sample_summaries(str(path)):
            member = f"samples/{summary.id}_epoch_{summary.epoch}.json"
            head = _read_head(archive, member, HEAD_FIELDS) if member in members else None
            if head is None:
                sample = read_eval_log_sample(
                    str(path), summary.id, summary.epoch, exclude_fields=SAMPLE_FIELDS_NOT_READ
                )
                head = {"metadata": sample.metadata, "store": sample.store}
            usage = Usage.of(summary.model_usage, summary.turn_count, summary.total_time, summary.working_time)
            yield SampleHead(summary.id, summary.epoch, summary.error, summary.completed_at, head, usage)


def _read_head(archive: zipfile.ZipFile, member: str, fields: frozenset[str]) -> dict[str, Any] | None:
    """The top-level `fields` of a JSON object member, read from its start and decoded only as far as the last
    of them; None when the member ends (or is not an object) before all are found."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    found: dict[str, Any] = {}
    text, pos, ended = "", None, False
    with archive.open(member) as stream:
        while len(found) < len(fields):
            field_ = _next_field(decoder, text, pos)
            if field_ is None:  # the text read so far ends inside the next field: read on
                if ended:
                    return None
                chunk = stream.read(max(HEAD_CHUNK, len(text)))  # doubling: a long store is parsed few times
                ended = not chunk
                text += utf8.decode(chunk, final=ended)
                continue
            name, value, pos = field_
            if name in fields:
                found[name] = value
    return found


def _next_field(decoder: json.JSONDecoder, text: str, pos: int | None) -> tuple[str | None, Any, int] | None:
    """(key, value, end) of the field at `pos` (None: the object's opening brace), or None when `text` ends
    before it does. A value only counts when more text follows it: a number cut at the end would parse short."""
    if pos is None:
        start = _OBJECT_START.match(text)
        return (None, None, start.end()) if start and start.end() < len(text) else None
    key = _NEXT_KEY.match(text, pos)
    if key is None:
        return None
    try:
        value, end = decoder.raw_decode(text, key.end())
    except json.JSONDecodeError:
        return None
    return (json.loads(f'"{key.group(1)}"'), value, end) if end < len(text) else None
