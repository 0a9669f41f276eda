"""The public SDK-backend base (econash.sdk_backend): its helpers, and the complete backend example of
docs/writing-plugins.md run as written against the loopback OpenAI-compatible server (no network)."""

from __future__ import annotations

import asyncio
import json
import re
import types

import pytest

from econash.backend import ErrorKind
from econash.errors import ConfigError
from econash.sdk_backend import (PLACEHOLDER_KEY, error_code, error_message, host_root, is_context_length_error,
                                 resolve_key, scrub_key, short_text)
from econash.testing.openai_server import Fault, FaultServer
from econash.types import LLMRequest, Message, SamplingParams

from conftest import REPO

SECRET = "sk-acme-SECRET-0123456789"
EXAMPLE_FIRST_LINE = "# my_econash_plugin/backend.py"


# ---------------------------------------------------------------- helpers


class StatusError(Exception):
    """An SDK-like exception: a code attribute or a JSON body."""

    def __init__(self, body=None, code=None, message="fallback"):
        super().__init__(message)
        self.body, self.code, self.message = body, code, message


def test_error_code_and_message_come_from_the_body_or_the_exception():
    nested = StatusError(body={"error": {"code": "model_not_found", "message": "no such model"}})
    flat = StatusError(body={"code": 42, "message": "flat message"})
    assert (error_code(nested), error_message(nested)) == ("model_not_found", "no such model")
    assert (error_code(flat), error_message(flat)) == ("42", "flat message")
    assert (error_code(StatusError(code="quota")), error_message(StatusError())) == ("quota", "fallback")
    assert error_code(ValueError("x")) is None


def test_short_text_is_one_line_without_a_final_stop_and_cut():
    assert short_text("a  long\n message.") == "a long message"
    assert short_text("x" * 300, limit=20) == "x" * 17 + "..."


def test_context_length_errors_are_recognised_by_code_or_wording():
    assert is_context_length_error("context_length_exceeded", "")
    assert is_context_length_error("", "This model's maximum context length is 4096 tokens")
    assert not is_context_length_error("invalid_request", "temperature out of range")


def test_keys_resolve_to_the_option_the_variable_or_a_placeholder(monkeypatch):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    assert resolve_key("given", "ACME_API_KEY", None, "no key") == "given"
    assert resolve_key(None, "ACME_API_KEY", "http://127.0.0.1:1/v1", "no key") == PLACEHOLDER_KEY
    with pytest.raises(ConfigError, match="no key"):
        resolve_key(None, "ACME_API_KEY", None, "no key")
    monkeypatch.setenv("ACME_API_KEY", "from-env")
    assert resolve_key(None, "ACME_API_KEY", None, "no key") == "from-env"


def test_scrub_key_hides_the_key_but_not_a_placeholder_or_a_tiny_key():
    assert scrub_key(f"rejected {SECRET}", SECRET) == "rejected ***"
    assert scrub_key(f"key {PLACEHOLDER_KEY}", PLACEHOLDER_KEY) == f"key {PLACEHOLDER_KEY}"
    assert scrub_key("a bad key", "a") == "a bad key"


def test_host_root_drops_a_trailing_v1():
    assert host_root("http://h:1/v1/") == host_root("http://h:1") == "http://h:1"


# ---------------------------------------------------------------- the documented example


def example_module() -> types.ModuleType:
    """The code block of docs/writing-plugins.md that starts with EXAMPLE_FIRST_LINE, as a module."""
    text = (REPO / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if b.startswith(EXAMPLE_FIRST_LINE)]
    assert len(blocks) == 1, "docs/writing-plugins.md lost its backend example"
    module = types.ModuleType("acme_backend_example")
    exec(compile(blocks[0], "docs/writing-plugins.md", "exec"), module.__dict__)  # noqa: S102 - our own doc
    return module


@pytest.fixture
def acme(monkeypatch):
    pytest.importorskip("openai", reason="the example backend uses the openai SDK")
    for name in ("ACME_API_KEY", "ACME_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return example_module()


@pytest.fixture
def server():
    with FaultServer(responder=lambda body: "The answer is 4. Answer: 4") as srv:
        yield srv


def generate(backend, text="what is two plus two"):
    """One generate call in its own event loop; the result, or the exception raised."""
    request = LLMRequest(messages=[Message(role="user", content=text)], sampling=SamplingParams(seed=3))

    async def go():
        try:
            return await backend.generate(request)
        except Exception as exc:  # noqa: BLE001 - the tests inspect it
            return exc
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_the_example_backend_runs_a_whole_econash_run(acme, server, econash_register_plugin, econash_cli,
                                                       monkeypatch, tmp_path):
    monkeypatch.setenv("ACME_API_KEY", SECRET)
    econash_register_plugin(acme, name="acme-example")
    listed = econash_cli(["list", "backends"])
    assert re.search(r"^acme\s+acme-example\s+Acme chat completions", listed.output, re.M)
    run_dir = tmp_path / "run"
    result = econash_cli(["run", "--backend", "acme", "--base-url", server.base_url, "--model", "acme-large",
                          "--task", "arith", "--method", "cot", "--test-size", "2", "--no-cache",
                          "--display", "none", "--run-dir", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_test"] == 2 and summary["llm_calls"] == 2 and summary["accuracy"] is not None
    assert [body["model"] for body in server.requests] == ["acme-large", "acme-large"]
    assert {headers["authorization"] for headers in server.request_headers} == {f"Bearer {SECRET}"}
    assert SECRET not in (run_dir / "manifest.json").read_text()


def test_the_example_backend_without_a_key_names_the_variable(acme, econash_register_plugin, econash_cli):
    econash_register_plugin(acme, name="acme-example")
    result = econash_cli(["run", "--backend", "acme", "--task", "arith", "--test-size", "1", "--display", "none"])
    assert result.exit_code == 2 and "set the environment variable ACME_API_KEY" in result.output


def test_the_example_backend_gets_the_base_error_handling(acme, server):
    backend = acme.AcmeBackend(acme.AcmeBackend.Options(api_key=SECRET), model="acme-large", base_url=server.base_url)
    assert backend.capabilities.supports_seed and backend.capabilities.max_concurrency == 32
    assert generate(backend).text == "The answer is 4. Answer: 4" and server.requests[-1]["seed"] == 3
    server.add_faults(Fault("rate_limit", retry_after=2), "quota", "auth", "not_found", "context_length")
    assert backend.classify_error(generate(backend)) == (ErrorKind.RATE_LIMIT, 2.0)
    quota = generate(backend)
    assert backend.classify_error(quota) == (ErrorKind.FATAL, None)
    auth = generate(backend)
    assert backend.classify_error(auth)[0] == ErrorKind.FATAL
    assert "set ACME_API_KEY to a valid key" in backend.describe_error(auth)
    assert "does not know the model 'acme-large' (404)" in backend.describe_error(generate(backend))
    assert "too long for model 'acme-large'" in backend.describe_error(generate(backend))
    assert SECRET not in repr(backend)
