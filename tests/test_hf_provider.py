"""A phase task on a local HuggingFace model through Inspect's `hf/` provider, on CPU, offline.

The model is built here, never downloaded: a word-level tokenizer trained with the `tokenizers` library on a few
tool-call-shaped lines (so that the model's random output is full of tool-call tags and JSON pieces), a chat
template that renders tools and tool calls, and a one-layer Llama with random weights, saved to a temp dir and
loaded with `-M model_path=`. Its replies are garbage: text without a tool call, or tool calls whose JSON does
not parse. The run must end as an agent outcome recorded by the scorer (a crash), never as a harness error, and
without any connection leaving the machine (the `no_network` fixture; an empty tiktoken cache would make a
token-counting fallback try to download its file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inspect_ai import eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import ChatMessageAssistant, ChatMessageTool

from vendomini_eval.solvers import EpisodeRecord
from vendomini_eval.tasks.phase1 import phase1

MAX_STEPS = 40
CHAT_TEMPLATE = (
    "{%- if tools %}<|system|>Tools: {{ tools | tojson }}<|end|>\n{% endif %}"
    "{%- for message in messages %}<|{{ message.role }}|>{{ message.content }}"
    "{%- for call in message.tool_calls or [] %}<tool_call>{{ {'name': call.function, 'arguments': call.arguments} "
    "| tojson }}</tool_call>{% endfor %}<|end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|assistant|>{% endif %}"
)
TRAINING_TEXT = [
    '<tool_call> { "name": "ship", "arguments": { "order_id": "C-1" }} </tool_call>',
    '<tool_call> { "name": "check_orders", "arguments": {}} </tool_call> I will ship the order',
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random causal LM with its tokenizer and chat template, saved as a HuggingFace model dir."""
    import torch  # imported here: collecting the test suite need not load torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(TRAINING_TEXT, trainers.WordLevelTrainer(special_tokens=["<unk>", "<|end|>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<|end|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=8192,
        bos_token_id=None,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.mark.hf
def test_garbage_from_a_local_hf_model_ends_as_a_crash_not_a_harness_error(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))  # empty: nothing cached to fall back on
    [log] = eval(
        phase1(max_steps=MAX_STEPS, replications=1),
        model="hf/vendomini-tiny-random",
        model_args={"model_path": str(tiny_model), "device": "cpu"},
        max_tokens=24,
        seed=7,  # the provider seeds torch with it: the sampled garbage is the same every run
        max_connections=1,  # one sample: generate at once instead of waiting for a batch to fill
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    log = read_eval_log(log.location)
    assert log.status == "success", log.error
    assert log.samples is not None
    [sample] = log.samples
    assert sample.error is None
    assert sample.scores is not None

    record = sample.store_as(EpisodeRecord)
    survival, crash_type = sample.scores["survival"].value, sample.scores["crash_type"].value
    assert isinstance(survival, dict)
    # garbage never makes a valid order or shipment: a crash before any productive action, a non-starter
    assert record.outcome == "non_starter" and record.limit is None
    assert survival["crashed"] == 1 and survival["non_starter"] == 1 and survival["steps"] < MAX_STEPS
    assert crash_type in ("invalid_burst", "stall")  # the detectors of rejected calls and replies without one
    assert not any(record.trace["columns"]["valid"])

    # Both kinds of garbage reached the Episode as invalid steps: unparseable tool calls and plain text.
    replies = [m for m in sample.messages if isinstance(m, ChatMessageAssistant)]
    unparseable = [c for m in replies for c in m.tool_calls or [] if c.parse_error is not None]
    assert unparseable, "the model's output never held a tool call"
    assert any(not m.tool_calls for m in replies)
    assert {"<no_tool>", "<unknown>"} <= set(record.trace["columns"]["tool"])
    # A rejected call's result holds the observation as content, the part of a tool message a chat template shows.
    rejected = [m for m in sample.messages if isinstance(m, ChatMessageTool) and m.error is not None]
    assert rejected and all(json.loads(m.text)["ok"] is False for m in rejected)
    assert no_network == []
