"""What llama-cpp-python's `create_chat_completion` would do with a request, for the batched decoder.

The batched path (`local_batch.py`) drives llama.cpp through its low-level API, yet its answers must
be those of the `local` backend's one-call-at-a-time path, which calls `create_chat_completion`.
Rather than re-deriving the chat template, the stop strings and the sampler settings, the plan is
read from that very method: it runs on a stand-in for the model whose `create_completion` records
its arguments instead of generating (`plan_request`). The sampler chain and the loop that turns
sampled tokens into text (`TextAssembly`) then follow llama-cpp-python 0.3's `Llama._create_completion`
and `Llama.generate` step by step, so a sequence ends on the same token, with the same text, token
count and finish reason. tests/test_local_batching.py compares the two paths on the real model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from econash.errors import ConfigError

# Arguments of create_completion that the batched decoder does not implement, with the value
# create_chat_completion passes when a request does not ask for them.
UNSUPPORTED_DEFAULTS: dict[str, Any] = {
    "suffix": None, "echo": False, "stream": False, "logprobs": None, "grammar": None,
    "logits_processor": None, "logit_bias": None, "mirostat_mode": 0, "tfs_z": 1.0,
}


class _Recorded(Exception):
    """Carries create_completion's arguments out of create_chat_completion."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        super().__init__("create_completion recorded")
        self.arguments = arguments


class _RecordingModel:
    """The model as create_chat_completion sees it, except that create_completion only records."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, **arguments: Any) -> Any:
        raise _Recorded(arguments)


@dataclass
class RequestPlan:
    """One request as llama-cpp-python would generate it: prompt tokens, limits, sampler settings."""

    prompt: list[int]
    max_tokens: int
    stop: list[bytes]
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    typical_p: float
    seed: int
    repeat_penalty: float
    frequency_penalty: float
    presence_penalty: float
    stopping_criteria: Any = None


def plan_request(llama: Any, n_ctx: int, messages: list[dict[str, Any]], *, temperature: float, top_p: float,
                 max_tokens: int, seed: int, stop: list[str]) -> RequestPlan:
    """The prompt and settings `llama.create_chat_completion(...)` would generate with, in a context of
    n_ctx tokens; raises ValueError on a prompt that does not fit, with llama-cpp-python's message."""
    from llama_cpp import Llama

    try:
        Llama.create_chat_completion(_RecordingModel(llama), messages=messages,  # type: ignore[arg-type]
                                     temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, stop=stop)
    except _Recorded as recorded:
        arguments = recorded.arguments
    else:  # pragma: no cover - a chat handler that generates without create_completion
        raise ConfigError("This model's chat format does not go through create_completion; use -M parallel=1.")
    for name, default in UNSUPPORTED_DEFAULTS.items():
        if arguments.get(name, default) != default:
            raise ConfigError(f"Batched local decoding does not support '{name}'; use -M parallel=1.")
    prompt = arguments["prompt"]
    if not isinstance(prompt, list):
        raise ConfigError("This model's chat format gives a text prompt rather than tokens; use -M parallel=1.")
    # As Llama._create_completion: the prompt must leave room, and max_tokens is cut to the context.
    if len(prompt) >= n_ctx:
        raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}")
    limit = arguments.get("max_tokens")
    if limit is None or limit <= 0:
        limit = n_ctx - len(prompt)
    limit = limit if limit + len(prompt) < n_ctx else n_ctx - len(prompt)
    stops = arguments.get("stop") or []
    stops = [stops] if isinstance(stops, str) else list(stops)
    return RequestPlan(
        prompt=list(prompt), max_tokens=limit, stop=[s.encode("utf-8") for s in stops],
        temperature=arguments["temperature"], top_k=arguments["top_k"], top_p=arguments["top_p"],
        min_p=arguments["min_p"], typical_p=arguments["typical_p"], seed=arguments["seed"],
        repeat_penalty=arguments["repeat_penalty"], frequency_penalty=arguments["frequency_penalty"],
        presence_penalty=arguments["presence_penalty"], stopping_criteria=arguments.get("stopping_criteria"),
    )


def make_sampler(plan: RequestPlan, n_vocab: int, penalty_last_n: int) -> Any:
    """A llama.cpp sampler chain built as Llama._init_sampler builds it for these settings (the caller
    frees it with llama_sampler_free)."""
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    parts = [llama_cpp.llama_sampler_init_penalties(n_vocab, penalty_last_n, plan.repeat_penalty,
                                                    plan.frequency_penalty, plan.presence_penalty)]
    if plan.temperature < 0.0:
        parts.append(llama_cpp.llama_sampler_init_dist(plan.seed))
    elif plan.temperature == 0.0:
        parts.append(llama_cpp.llama_sampler_init_greedy())
    else:
        parts += [llama_cpp.llama_sampler_init_top_k(plan.top_k), llama_cpp.llama_sampler_init_typical(plan.typical_p, 1),
                  llama_cpp.llama_sampler_init_top_p(plan.top_p, 1), llama_cpp.llama_sampler_init_min_p(plan.min_p, 1),
                  llama_cpp.llama_sampler_init_temp(plan.temperature), llama_cpp.llama_sampler_init_dist(plan.seed)]
    for part in parts:
        llama_cpp.llama_sampler_chain_add(chain, part)
    return chain


@dataclass
class TextAssembly:
    """Turns one sequence's sampled tokens into its answer, with Llama._create_completion's rules:
    end-of-generation tokens, stop strings, max_tokens, and holding back an incomplete UTF-8 character
    (which may run past max_tokens, as there)."""

    plan: RequestPlan
    llama: Any
    is_end: Any  # token -> bool: llama.cpp's end-of-generation test
    completion: list[int] = field(default_factory=list)
    held_bytes: int = 0
    text: bytes = b""
    finish_reason: str | None = None

    def criteria_hit(self, evaluated: list[int], logits: Any) -> bool:
        """The chat format's stopping criteria; as in Llama.generate they see the tokens evaluated so
        far, not the token just sampled."""
        if self.plan.stopping_criteria is None:
            return False
        import numpy as np

        return bool(self.plan.stopping_criteria(np.asarray(evaluated, dtype=np.intc), logits))

    def _end(self, text: bytes, reason: str, evaluated: list[int], logits: Any) -> bool:
        self.text, self.finish_reason = text, reason
        # After its loop, _create_completion asks the stopping criteria once more.
        if self.criteria_hit(evaluated, logits):
            self.text, self.finish_reason = self._detokenize(), "stop"
        return True

    def _detokenize(self) -> bytes:
        return bytes(self.llama.detokenize(self.completion, prev_tokens=self.plan.prompt))

    def add(self, token: int, evaluated: list[int], logits: Any) -> bool:
        """Take the next sampled token; True when the answer is complete (the token is then not
        evaluated: the sequence is done)."""
        if self.criteria_hit(evaluated, logits):
            return self._end(self._detokenize(), "stop", evaluated, logits)
        if self.is_end(token):
            return self._end(self._detokenize(), "stop", evaluated, logits)
        self.completion.append(token)
        text = self._detokenize()
        for back, byte in enumerate(text[-3:]):
            remaining = 3 - back
            for width, pattern in ((2, 192), (3, 224), (4, 240)):
                if width > remaining and pattern & byte == pattern:
                    self.held_bytes = width - remaining
        if self.held_bytes > 0:
            self.held_bytes -= 1
            return False
        found = [stop for stop in self.plan.stop if stop in text]
        if found:
            return self._end(text[: text.index(found[0])], "stop", evaluated, logits)
        if len(self.completion) >= self.plan.max_tokens:
            return self._end(text, "length", evaluated, logits)
        return False

    def response(self) -> dict[str, Any]:
        """The answer in create_chat_completion's shape (the fields the backend reads)."""
        return {
            "choices": [{"message": {"role": "assistant", "content": self.text.decode("utf-8", errors="ignore")},
                         "finish_reason": self.finish_reason}],
            "usage": {"prompt_tokens": len(self.plan.prompt), "completion_tokens": len(self.completion),
                      "total_tokens": len(self.plan.prompt) + len(self.completion)},
        }
