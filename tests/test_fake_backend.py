"""The built-in fake backend: scripted, echo and callable replies with deterministic usage."""

from __future__ import annotations

import asyncio

import pytest

from econash.testing import FakeBackend, FakeScriptExhausted
from econash.types import LLMRequest, LLMResult, Message, Usage


def request(text: str) -> LLMRequest:
    return LLMRequest(messages=[Message(role="system", content="be brief"), Message(role="user", content=text)])


def test_script_replies_in_order_then_raises():
    backend = FakeBackend(script=["one two", "three"])
    first = asyncio.run(backend.generate(request("a b c")))
    second = asyncio.run(backend.generate(request("d")))
    assert (first.text, second.text) == ("one two", "three")
    assert first.usage == Usage(prompt_tokens=5, completion_tokens=2)
    with pytest.raises(FakeScriptExhausted, match="ran out after 2 replies"):
        asyncio.run(backend.generate(request("e")))
    assert len(backend.requests) == 3


def test_script_can_raise_and_return_results():
    boom = ConnectionError("reset")
    canned = LLMResult(text="x", usage=Usage(prompt_tokens=1, completion_tokens=1), model="m")
    backend = FakeBackend(script=[boom, canned])
    with pytest.raises(ConnectionError):
        asyncio.run(backend.generate(request("q")))
    assert asyncio.run(backend.generate(request("q"))) is canned


def test_echo_is_the_default():
    backend = FakeBackend()
    assert asyncio.run(backend.generate(request("hello there"))).text == "hello there"


def test_callable_responder_sees_the_request():
    backend = FakeBackend(responder=lambda req: f"T={req.sampling.temperature}")
    assert asyncio.run(backend.generate(request("q"))).text == "T=0.7"


def test_only_one_reply_source():
    with pytest.raises(ValueError, match="only one"):
        FakeBackend(script=["a"], echo=True)


def test_fixture_is_exported_to_plugin_authors(econash_fake_backend):
    backend = econash_fake_backend(script=["4"])
    assert asyncio.run(backend.generate(request("2+2"))).text == "4"
