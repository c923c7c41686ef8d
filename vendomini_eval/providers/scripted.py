"""Scripted policies as Inspect models: `vendomini/heuristic`, `vendomini/attentive`, `vendomini/random`,
`vendomini/open_loop`, the LLM-like behaviours (`vendomini/chatter`, `vendomini/plan_only`, ...:
`vendomini_eval.policies.BEHAVIOURS`), and fault-injected variants of the heuristic.

    inspect eval vendomini_eval/phase1 --model vendomini/heuristic
    inspect eval vendomini_eval/phase1 --model vendomini/heuristic -M fault=looping -M onset=120 -M seed=7
    inspect eval vendomini_eval/phase1 --model vendomini/plan_only -M onset=50
    inspect eval vendomini_eval/phase1 --model vendomini/chatter

Breakdown behaviours (alternating_reads, plan_only, only_wait) need `-M onset=<step>`, malformed_burst takes one
for where its burst starts, the other behaviours take none. A policy's reply text (chatter's) is the assistant
message's content, beside its tool call or alone.

The model plays VendoMini tasks only and decides from what the conversation shows, like an LLM: the task's facts
line in the system message (`FACTS_MARKER` + `PolicyContext.facts()` as JSON) and its tool results (a valid call's
content, a rejected call's error message: the observation JSON). After a reply without a tool call the policy gets
the observation on the last line of the solver's nudge, or None. Usage counts what the model read (the prompt,
then each new result) and wrote, at four characters per token; nothing is downloaded.

Conversations. The solver keeps a bounded window, so the model cannot replay the history: it keeps one policy
per conversation and feeds it only the newest tool result. Every reply carries one fresh id, `vm-<prompt>-<n>-<turn>`
(the tool call's id, the message id and `metadata["vendomini_turn"]`): `<prompt>` is the prompt digest (below),
`<n>` the lowest index not held by a live conversation with the same digest, `<turn>` the reply's number. The
next generate finds its conversation from the newest tool result (or, after a reply without a tool call, from that
reply's metadata); a generate with neither starts a conversation. Ids are deterministic, never random; only
concurrent samples with the same prompt can swap `<n>`, and their policies are identical. At most
`max_conversations` (model arg) are kept, least recently continued dropped first; continuing a dropped one is an
error. Do not use Inspect's model cache with this model: a cached reply skips the policy.

Seeds. The policy's seed is the first 8 bytes (big-endian) of sha256 over `"<seed>\\0<system>\\0<user>"`: the
model arg `seed` (default 0) and the texts of the first system and first user messages. Samples with different
prompts get different streams; the same prompt and seed give the same decisions.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    ModelAPI,
    ModelInfo,
    ModelOutput,
    ModelUsage,
    modelapi,
    set_model_info,
)
from inspect_ai.tool import ToolCall, ToolChoice, ToolInfo

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction
from vendomini_eval.policies import BEHAVIOURS, FAULTS, POLICIES, Policy, PolicyContext, make_policy
from vendomini_eval.policies.base import FACTS_MARKER, Prediction
from vendomini_eval.policies.behaviours import onset_use

PROVIDER = "vendomini"
TURN_METADATA = "vendomini_turn"
MODEL_ARGS = ("fault", "onset", "seed", "max_conversations")
MAX_CONNECTIONS = 1_000  # CPU-local: no rate limit to respect
MAX_CONVERSATIONS = 4_096  # live conversations kept; must exceed the samples run at once
CHARS_PER_TOKEN = 4
PROMPT_DIGEST_CHARS = 12
CONTEXT_LENGTH = 2_048
"""Declared context length of the scripted models. They read only the newest tool result, so the solver's
window (half the context length) can stay small, which keeps Inspect's per-turn work small."""


def policy_seed(seed: int, system_text: str, user_text: str) -> int:
    """The policy's seed: model arg `seed` combined with the first system and user message texts."""
    digest = hashlib.sha256(f"{seed}\0{system_text}\0{user_text}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def estimate_tokens(text: str) -> int:
    """Offline token estimate: one token per four characters (at least one)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


@dataclass
class _Conversation:
    key: str
    policy: Policy
    turns: int = 0
    last_turn: str = ""
    last_day: int = 0


for _policy in POLICIES:
    set_model_info(f"{PROVIDER}/{_policy}", ModelInfo(context_length=CONTEXT_LENGTH, organization="VendoMini-Eval"))


@modelapi(name=PROVIDER)
class VendoMiniPolicyAPI(ModelAPI):
    """A scripted policy (`POLICIES`: heuristic, attentive, random, open_loop or a behaviour) served as an
    Inspect model; see the module docstring."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        unknown = sorted(set(model_args) - set(MODEL_ARGS))
        if unknown:
            raise ValueError(f"{PROVIDER}: unknown model arg(s) {', '.join(unknown)}; allowed: {', '.join(MODEL_ARGS)}")
        self.policy_name = model_name
        self.fault: str | None = _optional_str(model_args.get("fault"))
        self.onset = _optional_int("onset", model_args.get("onset"))
        seed = _optional_int("seed", model_args.get("seed"))
        self.seed = 0 if seed is None else seed
        max_conversations = _optional_int("max_conversations", model_args.get("max_conversations"))
        self.max_conversations = MAX_CONVERSATIONS if max_conversations is None else max_conversations
        if self.max_conversations < 1:
            raise ValueError(f"{PROVIDER}: model arg max_conversations must be >= 1, got {self.max_conversations}")
        try:  # the policies' own checks, on a probe context
            make_policy(model_name, PolicyContext.for_condition(Condition()), 0, fault=self.fault, onset=self.onset)
        except ValueError as error:
            given = " ".join(f"-M {k}={v}" for k, v in model_args.items()) or "(no model args)"
            raise ValueError(
                f"{PROVIDER}/{model_name} {given}: {error}. Usage: {PROVIDER}/<{'|'.join(POLICIES)}>"
                f"; -M fault=<{'|'.join(FAULTS)}> with -M onset=<first faulty step, >= 1> (heuristic only)"
                f"; -M onset=<first step of the behaviour, >= 1> ({', '.join(_onset_behaviours())})"
                "; -M seed=<integer>"
            ) from None
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()  # by last turn id, LRU order
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    # ----- Inspect hooks ----------------------------------------------------------------------------------
    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        """One step: the policy's next action for the conversation that `input` continues (or starts)."""
        with self._lock:  # generate has no await: each call runs whole, but guard against threads too
            conversation, observation, read_text = self._locate(input)
            action, prediction = conversation.policy.act(observation)
            if observation is not None:
                conversation.last_day = int(observation.get("day", conversation.last_day))
            turn_id = self._next_turn(conversation)
        return self._output(turn_id, action, prediction, read_text, tools)

    async def count_text_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def max_connections(self) -> int:
        return MAX_CONNECTIONS

    def connection_key(self) -> str:
        return PROVIDER

    # ----- conversations ----------------------------------------------------------------------------------
    def _locate(self, messages: list[ChatMessage]) -> tuple[_Conversation, dict[str, Any] | None, str]:
        """The conversation `messages` continues, the observation to feed its policy, and the text read."""
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if isinstance(message, ChatMessageTool):
                conversation = self._continued(message.tool_call_id)
                observation, text = _tool_observation(message, conversation.last_day)
                return conversation, observation, text
            turn = (message.metadata or {}).get(TURN_METADATA) if isinstance(message, ChatMessageAssistant) else None
            if turn is not None:
                if message.tool_calls:
                    raise ValueError(f"{PROVIDER}: tool call {message.tool_calls[0].id} has no tool result")
                conversation = self._continued(turn)
                observation, text = _nudge_observation(messages[index + 1 :])
                return conversation, observation, text
        return self._start(messages)

    def _continued(self, turn_id: str | None) -> _Conversation:
        conversation = self._conversations.get(turn_id) if turn_id is not None else None
        if conversation is None:
            raise ValueError(
                f"{PROVIDER}: turn {turn_id!r} (the newest tool result's call) continues no live conversation of this "
                "model (the call was not made by this model instance, was already answered, or its conversation was "
                f"dropped: raise -M max_conversations above {self.max_conversations})"
            )
        return conversation

    def _start(self, messages: list[ChatMessage]) -> tuple[_Conversation, None, str]:
        system = next((m.text for m in messages if isinstance(m, ChatMessageSystem)), "")
        user = next((m.text for m in messages if isinstance(m, ChatMessageUser)), "")
        facts = _facts(messages)
        digest = hashlib.sha256(f"{system}\0{user}".encode()).hexdigest()[:PROMPT_DIGEST_CHARS]
        n = 0
        while f"{digest}-{n}" in self._keys:
            n += 1
        policy = make_policy(
            self.policy_name,
            PolicyContext.from_facts(facts),
            policy_seed(self.seed, system, user),
            fault=self.fault,
            onset=self.onset,
        )
        return _Conversation(key=f"{digest}-{n}", policy=policy), None, f"{system}\n{user}"

    def _next_turn(self, conversation: _Conversation) -> str:
        """Issue the conversation's next turn id and make it the conversation's handle (most recently used)."""
        if conversation.turns == 0:
            self._keys.add(conversation.key)
        self._conversations.pop(conversation.last_turn, None)
        conversation.turns += 1
        conversation.last_turn = f"vm-{conversation.key}-{conversation.turns}"
        self._conversations[conversation.last_turn] = conversation
        while len(self._conversations) > self.max_conversations:
            _, dropped = self._conversations.popitem(last=False)
            self._keys.discard(dropped.key)
        return conversation.last_turn

    # ----- output -----------------------------------------------------------------------------------------
    def _output(
        self, turn_id: str, action: AgentAction, prediction: Prediction, read_text: str, tools: list[ToolInfo]
    ) -> ModelOutput:
        metadata = {TURN_METADATA: turn_id}
        if action.tool is None:
            message = ChatMessageAssistant(
                id=turn_id, content=action.text, model=self.model_name, source="generate", metadata=metadata
            )
            written, stop_reason = action.text, "stop"
        else:
            # Every parameter of the tool's schema is sent, null where the policy has no value (the schemas
            # require every parameter and allow null for the optional ones, as strict tool schemas do).
            schema = next((t.parameters.properties for t in tools if t.name == action.tool), {})
            arguments = {**dict.fromkeys(schema), **action.arguments, **(prediction or {})}
            call = ToolCall(id=turn_id, function=action.tool, arguments=arguments)
            message = ChatMessageAssistant(
                id=turn_id,
                content=action.text,
                tool_calls=[call],
                model=self.model_name,
                source="generate",
                metadata=metadata,
            )
            call_text = json.dumps({"function": action.tool, "arguments": arguments})
            written, stop_reason = action.text + call_text, "tool_calls"
        input_tokens, output_tokens = estimate_tokens(read_text), estimate_tokens(written)
        usage = ModelUsage(
            input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
        )
        return ModelOutput(
            model=self.model_name,
            choices=[ChatCompletionChoice(message=message, stop_reason=stop_reason)],
            usage=usage,
        )


# ----- reading messages -----------------------------------------------------------------------------------
def _facts(messages: list[ChatMessage]) -> dict[str, Any]:
    """The facts JSON of the system message's `FACTS_MARKER` line."""
    for message in messages:
        if isinstance(message, ChatMessageSystem):
            for line in message.text.splitlines():
                if line.startswith(FACTS_MARKER):
                    return json.loads(line[len(FACTS_MARKER) :])
    raise ValueError(
        f"{PROVIDER} models play VendoMini tasks only: no system message has a line starting with {FACTS_MARKER!r}"
    )


def _json_observation(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "ok" in value and "day" in value else None


def _tool_observation(message: ChatMessageTool, last_day: int) -> tuple[dict[str, Any], str]:
    """The observation a tool result carries: its content (valid call) or its error message (rejected call)."""
    if message.error is not None:
        text = message.error.message
        observation = _json_observation(text)
        if observation is None:  # an error the solver did not turn into an observation: read it as one
            observation = {"day": last_day, "ok": False, "error": message.error.type, "message": text}
        return observation, text
    text = message.text
    observation = _json_observation(text)
    if observation is None:
        raise ValueError(
            f"{PROVIDER}: the result of call {message.tool_call_id!r} is not a VendoMini observation (a JSON object "
            f"with 'day' and 'ok'; was it truncated by max_tool_output?): {text[:200]!r}"
        )
    return observation, text


def _nudge_observation(messages: list[ChatMessage]) -> tuple[dict[str, Any] | None, str]:
    """After a reply without a tool call: the observation a later user message ends with (the solver's nudge
    states the step's outcome on its last line), or None."""
    for message in reversed(messages):
        if isinstance(message, ChatMessageUser):
            lines = message.text.strip().splitlines()
            observation = _json_observation(lines[-1]) if lines else None
            if observation is not None:
                return observation, message.text
    return None, ""


def _onset_behaviours() -> list[str]:
    """Behaviours that take `-M onset` (required for breakdowns, optional for malformed_burst)."""
    return [name for name in BEHAVIOURS if onset_use(name) != "none"]


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" or str(value).lower() == "none" else str(value)


def _optional_int(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{PROVIDER}: model arg {name} must be an integer, got {value!r}") from None
