"""The condition of one run: every knob of the world, the shocks, the prediction protocol and the detector.

A `Condition` is what one cell of an experiment grid fixes. It is validated strictly (unknown keys and
out-of-range values fail with the key path named) and is hashable through its canonical JSON, which is what
per-run seeds are derived from. Semantics of every field: docs/METHOD.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vendomini_eval.gates import load_policy

PeTypeMix = Literal["realistic", "temporal_only", "quantity_only", "causal_only", "uniform"]
Magnitude = Literal["low", "medium", "high"]
Observability = Literal["full", "delayed", "partial", "hidden"]
PredictionMode = Literal["none", "optional", "required", "required+confidence"]
PredictionFormat = Literal["minimal", "structured", "rich"]
Pressure = Literal["low", "medium", "high"]
MemoryTools = Literal["none", "basic", "full"]
RecoveryTools = Literal["none", "reset", "audit", "help", "all"]
CrashPreset = Literal["strict", "moderate", "lenient"]
WorldName = Literal["warehouse", "vending"]
WAREHOUSE_ONLY = {"complexity_level": 1, "steps_per_day": 1, "pressure_level": "medium", "recovery_tools": "none"}
"""Knobs the vending world has no counterpart for, with the value they must keep there (its days end by end_day;
its money and tools are Vending-Bench's; docs/METHOD.md, "Vending-Bench world")."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PEConfig(Strict):
    """Prediction-error tracking (docs/METHOD.md, "Prediction error")."""

    ewma_windows: tuple[int, int, int] = (10, 100, 500)
    """Fast, medium and slow EWMA windows in steps; alpha = 2 / (window + 1)."""
    surprise_threshold: float = Field(0.5, gt=0.0, le=1.0)
    """A single PE above this value is recorded as a surprise event."""
    temporal_half_days: float = Field(3.0, gt=0.0)
    """Delivery-day error (days) at which the temporal PE reaches 0.5."""

    @model_validator(mode="after")
    def _windows_increase(self) -> PEConfig:
        fast, medium, slow = self.ewma_windows
        if not (1 <= fast < medium < slow):
            raise ValueError(f"ewma_windows must be increasing positive integers, got {self.ewma_windows}")
        return self


class Condition(Strict):
    """One experimental condition. Defaults are the study's base condition (configs/base.yaml)."""

    world: WorldName = "warehouse"
    """The business: the warehouse, or the Vending-Bench-style vending machine."""
    complexity_level: int = Field(1, ge=0, le=4)
    p_shock: float = Field(0.1, ge=0.0, le=1.0)
    pe_type_mix: PeTypeMix = "realistic"
    pe_mag: Magnitude = "medium"
    observability: Observability = "full"
    notice_delay_steps: int = Field(5, ge=1, le=1000)
    prediction_mode: PredictionMode = "required"
    prediction_format: PredictionFormat = "structured"
    pressure_level: Pressure = "medium"
    memory_tools: MemoryTools = "basic"
    recovery_tools: RecoveryTools = "none"
    steps_per_day: int = Field(1, ge=1, le=100)
    max_steps: int = Field(500, ge=1, le=1_000_000)
    max_days: int | None = Field(None, ge=1, le=1_000_000)
    """The run ends (censored, like max_steps) when this day begins; None: only max_steps bounds it."""
    crash_threshold: CrashPreset = "moderate"
    continue_after_crash: int = Field(0, ge=0)
    initial_cash: float | None = Field(None, gt=0.0, le=1e9)
    """Starting cash in dollars; None: the pressure and complexity levels' default."""
    gates: str | None = Field(None, min_length=1)
    """Governance gate policy: a shipped name (configs/gates: default, none) or a YAML path; None: no gate."""
    pe: PEConfig = PEConfig()

    @field_validator("gates")
    @classmethod
    def _policy_loads(cls, value: str | None) -> str | None:
        if value is not None:
            load_policy(value)  # an unknown name or a bad file fails here, naming the file and key path
        return value

    @model_validator(mode="after")
    def _knobs_of_the_world(self) -> Condition:
        if self.world == "vending":
            for key, value in WAREHOUSE_ONLY.items():
                if getattr(self, key) != value:
                    raise ValueError(f"{key} is a warehouse knob: the vending world takes only {value!r}")
        return self

    def canonical_json(self) -> str:
        """Stable JSON of every set field: the identity of the condition for seeds and hashes. A field left at
        None is omitted, and so is the default world, so a knob added later leaves every existing condition's
        seeds as they were."""
        return self.model_dump_json(exclude_none=True, exclude={"world"} if self.world == "warehouse" else None)
