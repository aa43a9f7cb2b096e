"""The `openai` describer: any OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp
server, LM Studio, OpenAI), set by describe.base_url, describe.model and describe.api_key_env."""
from __future__ import annotations

from typing import Any

from seglens import hookimpl
from seglens.errors import SeglensError
from seglens.llm_describe import LLMDescriber


def make_openai(options: dict[str, Any]) -> LLMDescriber:
    opts = dict(options)
    if not opts.get("model"):
        raise SeglensError("the openai describer needs a model name",
                           hint="pass --model NAME or --set describe.model=NAME (as the server lists it)")
    if opts.get("concurrency", "auto") == "auto":
        opts["concurrency"] = 4

    def model():
        from seglens.openai_client import OpenAIChatModel

        model_opts = dict(opts)
        if model_opts.get("context_tokens") == "auto":
            model_opts.pop("context_tokens")
        return OpenAIChatModel(model_opts)

    return LLMDescriber(model, opts, "openai")


@hookimpl
def register_describers(register):
    register("openai", make_openai, description="any OpenAI-compatible server (base_url, model, api key env)")
