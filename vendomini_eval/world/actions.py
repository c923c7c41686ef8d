"""Typed actions: how a tool and its arguments are declared (`ToolSpec`, `Argument`) and validated, and the typed
error every rejected action raises. Each world declares its tools with them (`world/tools.py` for the warehouse,
`vending/tools.py` for the vending machine).

Arguments are validated strictly (no coercion of "5" to 5, no bools as numbers, no extra keys), so what a
model sends either is exactly a valid call or is rejected with a message that names the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, create_model

ErrorKind = Literal[
    "no_tool_call", "unknown_tool", "unavailable_tool", "malformed", "bad_prediction",
    "unknown_supplier", "unknown_sku", "not_carried", "bad_quantity", "below_min_order", "over_capacity",
    "insufficient_funds", "unknown_order", "insufficient_stock", "unknown_po", "already_expedited",
    "tool_down", "unknown_quote", "quote_expired", "quote_mismatch", "unknown_note", "note_limit",
]  # fmt: skip


class ActionError(Exception):
    """A rejected action. The state is unchanged; `message` is written for the agent."""

    def __init__(self, kind: ErrorKind, message: str, attempted_cents: int = 0) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.attempted_cents = attempted_cents
        """Money the rejected action tried to commit (for spending-while-broke detection)."""


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    pass


NO_ARGS = NoArgs()


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument of a tool, as its tool declaration states it: the core validates it from this (strictly:
    no coercion) and the Inspect layer states it in the tool's schema from this."""

    name: str
    type: type[int] | type[str]
    description: str
    """What the model reads in the tool's schema."""
    required: bool = True
    minimum: int | None = None  # an integer's range
    maximum: int | None = None
    min_length: int | None = None  # a string's length
    max_length: int | None = None


def args_model(tool: str, arguments: tuple[Argument, ...]) -> type[Args]:
    """The pydantic model that validates a tool's arguments (the same model for every tool without any)."""
    if not arguments:
        return NoArgs
    fields: dict[str, Any] = {}
    for a in arguments:
        strict = StrictInt if a.type is int else StrictStr
        constraints = Field(
            ... if a.required else None, ge=a.minimum, le=a.maximum, min_length=a.min_length, max_length=a.max_length
        )
        fields[a.name] = (strict if a.required else strict | None, constraints)
    return create_model(f"{tool}_args", __base__=Args, **fields)


def describe_validation_error(tool: str, error: ValidationError) -> str:
    """One line per problem, naming the argument: what a model needs to fix its call."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(arguments)"
        if item["type"] == "missing":
            parts.append(f"argument '{where}' is required")
        elif item["type"] == "extra_forbidden":
            parts.append(f"argument '{where}' is not accepted by {tool}")
        else:
            parts.append(f"argument '{where}': {item['msg']} (got {item.get('input')!r})")
    return f"{tool}: " + "; ".join(parts)


def parse_args(tool: str, model: type[Args], arguments: Any) -> Args:
    if not isinstance(arguments, Mapping):
        shown = f"str {arguments[:200]!r}" if isinstance(arguments, str) else type(arguments).__name__
        raise ActionError("malformed", f"{tool}: arguments must be a JSON object of named values, got {shown}")
    if model is NoArgs and not arguments:
        return NO_ARGS  # nothing to validate (the check tools and wait, most calls of a run)
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as error:
        raise ActionError("malformed", describe_validation_error(tool, error)) from None


ON_DELIVERY = "on_delivery"
"""How a card field resolves that waits for the goods: on the day its purchase order arrives."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    """What the model reads about the tool."""
    handler: Callable[[Any, Args], dict[str, Any]]
    """The world method that executes a validated call and returns its result."""
    arguments: tuple[Argument, ...] = ()
    outcomes: Mapping[str, str] = field(default_factory=dict)
    """The card fields that state this tool's outcome (structured and rich formats), each with how it resolves:
    against that key of the call's result, as soon as the call succeeds, or `ON_DELIVERY`. Names and kinds of the
    fields: `predictions.CARD_FIELDS`."""
    info_only: bool = False
    """Only reads information: never changes the business."""
    args: type[Args] = field(init=False)
    """The model that validates the arguments, generated from `arguments`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", args_model(self.name, self.arguments))  # a frozen field, set once here

    def apply(self, world: Any, args: Args) -> dict[str, Any]:
        """Execute a validated call; raise `ActionError` (state unchanged) if the world rejects it."""
        world.refuse_if_down(self.name, args)
        return self.handler(world, args)
