"""Experiment definitions: YAML files with inheritance and condition grids, expanded into seeded runs.

An experiment file (configs/phases/phase1.yaml) names a base condition, the values fixed for the whole
phase, and the grid axes; `load_experiment` validates it strictly (every error names the file and the key
path), `expand_runs` turns it into one `RunSpec` per condition and replication, each with a run seed derived
from the experiment seed, the condition and the replication. Format and reasons: docs/METHOD.md,
"Experiment configs". Plain Python: never imports inspect_ai.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vendomini_eval.condition import Condition
from vendomini_eval.files import display_path as _display
from vendomini_eval.files import shipped_configs_dir

SEED_DOMAIN = "vendomini/run-seed/v1"
"""Prefix of the hashed seed payload: changing the derivation means changing this tag."""

INFORMATION_KEYS = ("observability", "notice_delay_steps")
"""Condition knobs that change only what the agent is told about a shock, never the world or the shock schedule.
They do not enter the run seed: arms that differ only in them meet the same world on the same seeds (the
paired observability design, docs/METHOD.md)."""

TOP_LEVEL_KEYS = (
    "inherit",
    "name",
    "seed",
    "replications",
    "models",
    "condition",
    "fixed",
    "grid",
    "derived",
)
DERIVED_KEYS = ("from", "values")

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9_.-]")


class ExperimentConfigError(ValueError):
    """An experiment file is invalid; the message names the file and the key path."""

    def __init__(self, file: Path | str, key_path: str, problem: str) -> None:
        self.file = str(file)
        self.key_path = key_path
        self.problem = problem
        where = f"{_display(file)}: {key_path}: " if key_path else f"{_display(file)}: "
        super().__init__(where + problem)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DerivedField(Frozen):
    """A condition field set from another field by a lookup table (e.g. max_steps from complexity_level)."""

    target: str
    source: str
    table: dict[Any, Any]


class Experiment(Frozen):
    """A loaded experiment: the validated, merged file and its conditions in grid order."""

    name: str
    source: Path
    seed: int
    replications: int
    models: tuple[str, ...]
    """The phase's default Inspect models for the runner; not part of the condition grid or the seeds."""
    base: Condition
    """`condition:` with `fixed:` applied: what every grid cell starts from."""
    fixed: dict[str, Any]
    grid: dict[str, tuple[Any, ...]]
    """Grid axes (dotted condition keys) and their values, in the order they are written."""
    derived: tuple[DerivedField, ...]
    conditions: tuple[Condition, ...]
    labels: tuple[str, ...]
    """`condition_label` of each condition, same order."""


class RunSpec(Frozen):
    """One run: a condition of an experiment and a replication, with its seed. The model is chosen later."""

    experiment: str
    condition_index: int
    condition_label: str
    condition: Condition
    replication: int
    seed: int


# ---------------------------------------------------------------------------------------------------------
# Public API


def load_experiment(path_or_name: str | Path) -> Experiment:
    """Load an experiment file, or a shipped config by name ("phase1", "base")."""
    path = resolve_config(path_or_name)
    merged = _load_merged(path, stack=())
    return _build_experiment(path, merged)


def expand_runs(experiment: Experiment) -> list[RunSpec]:
    """One RunSpec per condition and replication, condition-major (grid order), replications from 0."""
    return [
        RunSpec(
            experiment=experiment.name,
            condition_index=index,
            condition_label=experiment.labels[index],
            condition=condition,
            replication=replication,
            seed=derive_run_seed(experiment.seed, condition, replication),
        )
        for index, condition in enumerate(experiment.conditions)
        for replication in range(experiment.replications)
    ]


def derive_run_seed(experiment_seed: int, condition: Condition, replication: int) -> int:
    """The run seed: sha256(domain, experiment seed, canonical condition, replication); 8 bytes, 63 bits.

    Pure function of its inputs (no OS randomness, no hash()), so every process and machine agrees, and the
    model is not an input: every model of a condition meets the same shock schedule. The condition enters with
    its INFORMATION_KEYS at their defaults, so an observability arm shares the seeds of its full-observability
    twin (whose seeds are those of the derivation before this rule).
    """
    world = condition.model_copy(update={key: Condition.model_fields[key].default for key in INFORMATION_KEYS})
    payload = f"{SEED_DOMAIN}\n{experiment_seed}\n{world.canonical_json()}\n{replication}"
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def condition_label(condition: Condition, axes: Sequence[str]) -> str:
    """Human-readable id from the grid values only, e.g. `p_shock=0.3,pe_mag=high`; "base" with no axes."""
    if not axes:
        return "base"
    return ",".join(f"{key}={_format_value(_get_dotted(condition, key))}" for key in axes)


def condition_slug(condition: Condition, axes: Sequence[str]) -> str:
    """The label made safe for task and file names: only [a-z0-9_.-] (`p_shock-0.3__pe_mag-high`)."""
    label = condition_label(condition, axes).lower().replace("=", "-").replace(",", "__")
    return _SLUG_UNSAFE.sub("_", label)


def labelled_axes(axes: Sequence[str], condition: Condition) -> list[str]:
    """The grid axes, plus `gates` when a gate is set outside the grid (`-T gates=`, `--gates`): a gated run is
    never named, labelled or grouped in the analysis as its ungated twin."""
    return [*axes, "gates"] if condition.gates is not None and "gates" not in axes else list(axes)


def task_name(experiment: str, condition: Condition, axes: Sequence[str]) -> str:
    """The Inspect task (and log) name of a condition: `<experiment>_<condition slug>`."""
    return f"{experiment}_{condition_slug(condition, axes)}"


def condition_values(experiment: Experiment, index: int) -> dict[str, Any]:
    """The grid-axis values of the experiment's condition `index`: what `condition_for` rebuilds it from."""
    return {key: _get_dotted(experiment.conditions[index], key) for key in experiment.grid}


def axis_defaults(experiment: Experiment) -> dict[str, Any]:
    """The value each grid axis takes when a single condition is asked for without it: the base value when
    it lies on the axis, else the axis's first value."""
    defaults = {}
    for key, values in experiment.grid.items():
        base_value = _get_dotted(experiment.base, key)
        defaults[key] = base_value if base_value in values else values[0]
    return defaults


def condition_for(experiment: Experiment, values: Mapping[str, Any]) -> Condition:
    """One condition of the experiment: its base, the grid axes at `values` (or their `axis_defaults`), any
    other condition key given in `values`, then derived fields not given explicitly. Keys and values are
    validated like the file's, with the key named in errors."""
    chosen = {**axis_defaults(experiment), **values}
    flat = dict(_flatten(experiment.source, "", experiment.base.model_dump(), ""))
    for key, value in values.items():
        _check_leaf_key(experiment.source, key, key)
        _validate_value(experiment.source, key, key, value)
    flat.update(chosen)
    _apply_derived(experiment.source, experiment.derived, flat, experiment.base, given=set(values))
    return _make_condition(experiment.source, "condition", flat)


def resolve_config(path_or_name: str | Path) -> Path:
    """An existing file path as given, else a shipped config: `phases/<name>.yaml`, then `<name>.yaml`."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = str(path_or_name)
    if path.suffix or "/" in name or "\\" in name:
        raise ExperimentConfigError(path, "", "no such file")
    configs = shipped_configs_dir()
    for candidate in (configs / "phases" / f"{name}.yaml", configs / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = sorted(p.stem for p in [*configs.glob("*.yaml"), *configs.glob("phases/*.yaml")])
    raise ExperimentConfigError(path, "", f"no such file or shipped config; shipped: {', '.join(shipped)}")


def format_plan(experiment: Experiment) -> str:
    """What `vendomini plan CONFIG` prints: axes, fixed values, counts, models and the condition table."""
    n_conditions = len(experiment.conditions)
    per_model = n_conditions * experiment.replications
    rows: list[tuple[str, str]] = [("source", _display(experiment.source)), ("seed", str(experiment.seed))]
    lines = [f"Experiment {experiment.name}", *_aligned(rows)]

    lines.append("grid axes (in order):")
    axes = [(key, f"{_join(values)}  ({len(values)})") for key, values in experiment.grid.items()]
    lines.extend(_aligned(axes or [("(none)", "one condition")], indent=2))
    if experiment.fixed:
        lines.append("fixed:")
        lines.extend(_aligned([(k, _format_value(v)) for k, v in experiment.fixed.items()], indent=2))
    if experiment.derived:
        lines.append("derived:")
        derived = [
            (rule.target, f"from {rule.source}: " + ", ".join(f"{k} -> {v}" for k, v in rule.table.items()))
            for rule in experiment.derived
        ]
        lines.extend(_aligned(derived, indent=2))

    counts = [
        ("conditions", str(n_conditions)),
        ("replications", str(experiment.replications)),
        (
            "runs per model",
            f"{per_model}  ({n_conditions} conditions x {experiment.replications} replications)",
        ),
        ("default models", ", ".join(experiment.models)),
        (
            "total runs",
            f"{per_model * len(experiment.models)}  ({per_model} x {len(experiment.models)} models)",
        ),
    ]
    lines.extend(_aligned(counts))

    width = max(len("label"), *(len(label) for label in experiment.labels))
    index_width = max(1, len(str(n_conditions - 1)))
    lines.append("")
    lines.append(f"{'#':>{index_width}}  {'label':<{width}}  max_steps")
    for index, (label, condition) in enumerate(zip(experiment.labels, experiment.conditions, strict=True)):
        lines.append(f"{index:>{index_width}}  {label:<{width}}  {condition.max_steps}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Reading and validating one file


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: PyYAML would silently keep the last one."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _read_file(path: Path) -> dict[str, Any]:
    """Parse and validate one file on its own, so that every error names the file where the key is written."""
    try:
        with path.open(encoding="utf-8") as stream:  # a stream, so YAML errors name the file and line
            raw = yaml.load(stream, Loader=_UniqueKeyLoader)
    except OSError as error:
        raise ExperimentConfigError(path, "", f"cannot read: {error}") from error
    except yaml.YAMLError as error:
        raise ExperimentConfigError(path, "", f"invalid YAML: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ExperimentConfigError(path, "", "expected a mapping of experiment keys")

    if "checks" in raw and not raw.keys() & set(TOP_LEVEL_KEYS):  # configs/ holds both kinds of YAML
        raise ExperimentConfigError(
            path, "checks", "this is a thresholds file (vendomini analyze --thresholds), not an experiment"
        )
    doc: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in TOP_LEVEL_KEYS:
            raise ExperimentConfigError(path, str(key), unknown_key(key, TOP_LEVEL_KEYS, "experiment key"))
        doc[key] = value

    if "inherit" in doc:
        doc["inherit"] = _read_inherit(path, doc["inherit"])
    if "name" in doc and not (isinstance(doc["name"], str) and _NAME_PATTERN.match(doc["name"])):
        raise ExperimentConfigError(path, "name", f"{doc['name']!r} must match {_NAME_PATTERN.pattern}")
    for key, minimum in (("seed", 0), ("replications", 1)):
        if key in doc and not (_is_int(doc[key]) and doc[key] >= minimum):
            raise ExperimentConfigError(path, key, f"{doc[key]!r} must be an integer >= {minimum}")
    if "models" in doc:
        doc["models"] = _read_models(path, doc["models"])
    for section in ("condition", "fixed"):
        if section in doc:
            doc[section] = _read_values(path, section, doc[section])
    if "grid" in doc:
        doc["grid"] = _read_grid(path, doc["grid"])
    if "derived" in doc:
        doc["derived"] = _read_derived(path, doc["derived"])
    return doc


def _read_inherit(path: Path, value: Any) -> list[Path]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ExperimentConfigError(path, "inherit", "expected a path or a non-empty list of paths")
    parents = []
    for i, item in enumerate(items):
        key_path = "inherit" if isinstance(value, str) else f"inherit[{i}]"
        if not isinstance(item, str):
            raise ExperimentConfigError(path, key_path, f"{item!r} is not a path")
        parent = path.parent / item  # relative to the including file, not to the working directory
        if not parent.is_file():
            raise ExperimentConfigError(path, key_path, f"no such file: {_display(parent)}")
        parents.append(parent)
    return parents


def _read_models(path: Path, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ExperimentConfigError(path, "models", "expected a non-empty list of Inspect model names")
    for i, model in enumerate(value):
        if not (isinstance(model, str) and "/" in model.strip("/")):
            raise ExperimentConfigError(path, f"models[{i}]", f"{model!r} is not a provider/model name")
    return value


def _read_values(path: Path, section: str, value: Any) -> dict[str, Any]:
    """A `condition:` or `fixed:` section as {dotted key: validated value}; nested mappings are flattened."""
    if not isinstance(value, dict):
        raise ExperimentConfigError(path, section, "expected a mapping of condition keys")
    flat: dict[str, Any] = {}
    for key, item in _flatten(path, section, value, prefix=""):
        if key in flat:
            raise ExperimentConfigError(path, f"{section}.{key}", "set twice (dotted and nested forms)")
        flat[key] = _validate_value(path, f"{section}.{key}", key, item)
    return flat


def _flatten(path: Path, section: str, mapping: dict[Any, Any], prefix: str) -> list[tuple[str, Any]]:
    """Dotted leaf keys of a possibly nested mapping, each checked against the Condition fields."""
    pairs: list[tuple[str, Any]] = []
    for raw_key, item in mapping.items():
        key = f"{prefix}{raw_key}"
        if key in _GROUPS:
            if not isinstance(item, dict):
                raise ExperimentConfigError(path, f"{section}.{key}", f"expected a mapping of {key}.* keys")
            pairs.extend(_flatten(path, section, item, prefix=f"{key}."))
        else:
            _check_leaf_key(path, f"{section}.{key}", key)
            pairs.append((key, item))
    return pairs


def _read_grid(path: Path, value: Any) -> dict[str, tuple[Any, ...]]:
    if not isinstance(value, dict):
        raise ExperimentConfigError(path, "grid", "expected a mapping of condition key -> list of values")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in value.items():
        key_path = f"grid.{key}"
        if key in _GROUPS:
            raise ExperimentConfigError(path, key_path, f"grid over single fields, e.g. {_leaves_of(key)[0]}")
        _check_leaf_key(path, key_path, key)
        if not isinstance(values, list) or not values:
            raise ExperimentConfigError(path, key_path, "expected a non-empty list of values")
        axis = tuple(_validate_value(path, f"{key_path}[{i}]", key, v) for i, v in enumerate(values))
        for i, v in enumerate(axis):
            if v in axis[:i]:  # a repeated value would create two identical conditions with equal seeds
                raise ExperimentConfigError(path, f"{key_path}[{i}]", f"{v!r} is repeated")
        grid[key] = axis
    return grid


def _read_derived(path: Path, value: Any) -> dict[str, dict[str, Any]]:
    """`derived: {target: {from: source, values: {source value: target value}}}`."""
    if not isinstance(value, dict):
        raise ExperimentConfigError(path, "derived", "expected a mapping of condition key -> rule")
    rules: dict[str, dict[str, Any]] = {}
    for target, rule in value.items():
        key_path = f"derived.{target}"
        _check_leaf_key(path, key_path, target)
        if not isinstance(rule, dict):
            raise ExperimentConfigError(path, key_path, "expected a mapping with keys from, values")
        for key in rule:
            if key not in DERIVED_KEYS:
                raise ExperimentConfigError(path, f"{key_path}.{key}", unknown_key(key, DERIVED_KEYS, "rule key"))
        checked: dict[str, Any] = {}
        if "from" in rule:
            source = rule["from"]
            _check_leaf_key(path, f"{key_path}.from", source)
            if source == target:
                raise ExperimentConfigError(path, f"{key_path}.from", "a field cannot be derived from itself")
            checked["from"] = source
        if "values" in rule:
            table = rule["values"]
            if not isinstance(table, dict) or not table:
                raise ExperimentConfigError(path, f"{key_path}.values", "expected a non-empty mapping")
            source = rule.get("from")
            if source is None:
                raise ExperimentConfigError(path, f"{key_path}.from", "required next to values")
            checked["values"] = {
                _validate_value(path, f"{key_path}.values.{k}", source, k): _validate_value(
                    path, f"{key_path}.values.{k}", target, v
                )
                for k, v in table.items()
            }
        rules[target] = checked
    return rules


# ---------------------------------------------------------------------------------------------------------
# Condition keys and values


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a model (nested models flattened) -> their field annotation."""
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.update(_leaf_keys(annotation, prefix=f"{prefix}{name}."))
        else:
            keys[f"{prefix}{name}"] = annotation
    return keys


_LEAVES = _leaf_keys(Condition)
CONDITION_KEYS = tuple(_LEAVES)
"""Every condition knob as a dotted key (`p_shock`, `pe.surprise_threshold`): what configs and -T set."""
_GROUPS = frozenset(key.rsplit(".", 1)[0] for key in _LEAVES if "." in key)


def _leaves_of(group: str) -> list[str]:
    return [key for key in _LEAVES if key.startswith(f"{group}.")]


def _check_leaf_key(path: Path, key_path: str, key: Any) -> None:
    if key not in _LEAVES:
        raise ExperimentConfigError(path, key_path, unknown_key(key, list(_LEAVES), "condition key"))


def _validate_value(path: Path, key_path: str, key: str, value: Any) -> Any:
    """The value as Condition stores it (0 -> 0.0, list -> tuple), or an error naming the allowed values."""
    annotation = _LEAVES[key]
    # YAML turns yes/no/on/off into booleans, and pydantic would accept True as the integer 1.
    if isinstance(value, bool) and annotation is not bool:
        raise ExperimentConfigError(path, key_path, f"{value!r} is a boolean; expected {_describe(annotation)}")
    try:
        condition = Condition.model_validate(_unflatten({key: value}))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        if first["type"] == "literal_error":
            allowed = ", ".join(str(a) for a in typing.get_args(annotation))
            raise ExperimentConfigError(path, key_path, f"{value!r} is not one of {allowed}") from None
        raise ExperimentConfigError(path, key_path, f"invalid value {value!r}: {first['msg']}") from None
    return _get_dotted(condition, key)


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def unknown_key(key: Any, allowed: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown {what}{hint}; allowed: {', '.join(allowed)}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *groups, leaf = key.split(".")
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return nested


def _get_dotted(model: BaseModel, key: str) -> Any:
    value: Any = model
    for part in key.split("."):
        value = getattr(value, part)
    return value


# ---------------------------------------------------------------------------------------------------------
# Inheritance and expansion


def _load_merged(path: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    """The file merged over its parents (in the order listed; later parents override earlier ones)."""
    resolved = path.resolve()
    if resolved in stack:
        cycle = " -> ".join(_display(p) for p in (*stack[stack.index(resolved) :], resolved))
        raise ExperimentConfigError(path, "inherit", f"inheritance cycle: {cycle}")
    doc = _read_file(path)
    merged: dict[str, Any] = {}
    for parent in doc.pop("inherit", []):
        parent_doc = _load_merged(parent, (*stack, resolved))
        parent_doc.pop("name", None)  # a name is never inherited: a phase that forgot one must not run as "base"
        merged = _deep_merge(merged, parent_doc)
    return _deep_merge(merged, doc)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key (existing keys keep their position); everything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build_experiment(path: Path, doc: dict[str, Any]) -> Experiment:
    """Cross-section checks on the merged document, then the grid expansion."""
    for key in ("seed", "replications", "models"):
        if key not in doc:
            raise ExperimentConfigError(path, key, "required (here or in an inherited file)")
    fixed: dict[str, Any] = doc.get("fixed", {})
    grid: dict[str, tuple[Any, ...]] = doc.get("grid", {})
    derived = _derived_fields(path, doc.get("derived", {}))
    for key in grid:
        if key in fixed:
            raise ExperimentConfigError(path, f"grid.{key}", "also set in fixed; a key is fixed or an axis")
    for rule in derived:
        for section, keys in (("fixed", fixed), ("grid", grid)):
            if rule.target in keys:
                raise ExperimentConfigError(path, f"derived.{rule.target}", f"also set in {section}")

    # fixed overrides condition: it is what the phase holds constant, whatever a parent's base says.
    base_values = {**doc.get("condition", {}), **fixed}
    base = _make_condition(path, "condition", base_values)
    axes = list(grid)
    conditions: list[Condition] = []
    for combo in itertools.product(*grid.values()):
        values = {**base_values, **dict(zip(axes, combo, strict=True))}
        _apply_derived(path, derived, values, base, given=set())
        conditions.append(_make_condition(path, f"condition {len(conditions)}", values))

    labels = tuple(condition_label(c, axes) for c in conditions)
    slugs = [condition_slug(c, axes) for c in conditions]
    if len(set(slugs)) != len(slugs):
        duplicate = next(s for s in slugs if slugs.count(s) > 1)
        raise ExperimentConfigError(path, "grid", f"two conditions share the slug {duplicate}")

    return Experiment(
        name=doc.get("name", path.stem),
        source=path,
        seed=doc["seed"],
        replications=doc["replications"],
        models=tuple(doc["models"]),
        base=base,
        fixed=fixed,
        grid=grid,
        derived=derived,
        conditions=tuple(conditions),
        labels=labels,
    )


def _apply_derived(
    path: Path, derived: Sequence[DerivedField], values: dict[str, Any], base: Condition, given: set[str]
) -> None:
    """Set each derived field from its source's value, unless the caller gave the field explicitly."""
    for rule in derived:
        if rule.target in given:
            continue
        source_value = values.get(rule.source, _get_dotted(base, rule.source))
        if source_value not in rule.table:
            have = ", ".join(str(k) for k in rule.table)
            raise ExperimentConfigError(
                path, f"derived.{rule.target}.values", f"no entry for {rule.source}={source_value}; has {have}"
            )
        values[rule.target] = rule.table[source_value]


def _derived_fields(path: Path, rules: dict[str, dict[str, Any]]) -> tuple[DerivedField, ...]:
    fields = []
    for target, rule in rules.items():
        for key in DERIVED_KEYS:
            if key not in rule:
                raise ExperimentConfigError(path, f"derived.{target}.{key}", "required")
        fields.append(DerivedField(target=target, source=rule["from"], table=rule["values"]))
    return tuple(fields)


def _make_condition(path: Path, what: str, values: Mapping[str, Any]) -> Condition:
    # Values were checked one by one; this catches rules that span fields.
    try:
        return Condition.model_validate(_unflatten(values))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ExperimentConfigError(path, what, problems) from None


# ---------------------------------------------------------------------------------------------------------
# Formatting


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "-".join(_format_value(v) for v in value)
    return str(value)  # str(0.1) == "0.1": floats print as they are written


def _join(values: Sequence[Any]) -> str:
    return ", ".join(_format_value(v) for v in values)


def _aligned(rows: Sequence[tuple[str, str]], indent: int = 0) -> list[str]:
    width = max(len(key) for key, _ in rows)
    return [f"{' ' * indent}{key:<{width}}  {value}" for key, value in rows]
