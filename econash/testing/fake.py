"""A fake LLM backend for tests: scripted replies, echo, or a callable, with deterministic usage.

It is registered as the ``fake`` backend, so whole runs can be tested offline:
``econash run --backend fake -B backend_options.echo=true``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

from econash.backend import Backend
from econash.call_types import Capabilities, LLMRequest, LLMResult, Usage
from econash.hookspecs import hookimpl


class FakeScriptExhausted(RuntimeError):
    """The fake backend was called more times than its script has replies."""


def fake_token_count(text: str) -> int:
    """Deterministic token count: whitespace-separated words."""
    return len(text.split())


Reply = str | LLMResult | BaseException
Responder = Callable[[LLMRequest], "str | LLMResult"]


class FakeBackend(Backend):
    """Fake model for tests: answers from a script, by echoing the last message, or by a callable."""

    name = "fake"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        *,
        script: Iterable[Reply] | None = None,
        responder: Responder | None = None,
        echo: bool = False,
        latency_s: float = 0.0,
        capabilities: Capabilities | dict[str, Any] | None = None,
        api_key: str | None = None,
    ) -> None:
        if sum(x is not None and x is not False for x in (script, responder, echo or None)) > 1:
            raise ValueError("give the fake backend only one of script, responder or echo")
        self.model = model or "fake-model"
        self.script = list(script) if script is not None else None
        # Replies depend on the script or responder, so they are part of the cache identity.
        self._identity: dict[str, Any] = (
            {"script": [repr(item) for item in self.script]} if self.script is not None
            else {"responder": id(responder)} if responder is not None else {"echo": True}
        )
        self.responder = responder
        self.echo = echo or (script is None and responder is None)
        self.latency_s = latency_s
        if isinstance(capabilities, dict):
            capabilities = Capabilities(**capabilities)
        self.capabilities = capabilities or Capabilities(supports_seed=True, max_concurrency=64)
        self.requests: list[LLMRequest] = []
        self._api_key = api_key  # accepted like a real backend's, so secret handling can be tested

    def _next_reply(self, request: LLMRequest) -> str | LLMResult:
        if self.responder is not None:
            return self.responder(request)
        if self.script is not None:
            if not self.script:
                raise FakeScriptExhausted(
                    f"the fake backend's script ran out after {len(self.requests) - 1} replies"
                )
            reply = self.script.pop(0)
            if isinstance(reply, BaseException):
                raise reply
            return reply
        return request.messages[-1].content

    async def generate(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        reply = self._next_reply(request)
        if isinstance(reply, LLMResult):
            return reply
        prompt = sum(fake_token_count(m.content) for m in request.messages)
        return LLMResult(
            text=reply,
            usage=Usage(prompt_tokens=prompt, completion_tokens=fake_token_count(reply)),
            model=self.model,
            finish_reason="stop",
            latency_s=self.latency_s,
        )

    def cache_identity(self) -> dict[str, Any]:
        return self._identity


@hookimpl
def register_backends(register: Callable[..., None]) -> None:
    register("fake", FakeBackend)


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    from econash.testing.fake_learner import FakeLearner

    register("fake-learner", FakeLearner)
