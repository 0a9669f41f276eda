"""A real Anthropic Messages API server on 127.0.0.1, with fault injection, for tests and benchmarks.

``MessagesServer`` implements ``POST /v1/messages`` (non-streaming) closely enough for the
``anthropic`` SDK to use it like the real API. It runs a ``ThreadingHTTPServer`` (HTTP/1.1,
keep-alive, daemon threads, backlog 256) on a free loopback port, like
:class:`econash.testing.openai_server.FaultServer`, and fails on request in the ways the API fails.

Example::

    from econash.testing.anthropic_server import MessageFault, MessagesServer

    with MessagesServer(responder=lambda body: "42", api_key="sk-test") as server:
        server.add_faults("overloaded", MessageFault("rate_limit", retry_after=2), None)
        # point a client at server.url ("http://127.0.0.1:PORT", the SDK adds /v1/messages):
        # request 1 gets a 529, request 2 a 429 with retry-after: 2, request 3 the answer "42".
        ...
        assert server.requests[-1]["system"] == "..."
        assert server.request_headers[-1]["anthropic-version"]

Behaviour in detail:

* Validation, answered with 400 ``invalid_request_error`` like the API: the body must be a JSON
  object with ``model``, a positive integer ``max_tokens`` and non-empty ``messages`` whose roles
  alternate ``user``/``assistant`` starting with ``user`` (stricter than today's API, which merges
  consecutive turns, so a client that does not merge them is caught); each content is a string or
  a list of text blocks; ``system`` is a string or a list of text blocks; ``temperature`` and
  ``top_p`` lie in [0, 1]; ``stop_sequences`` must not be whitespace only; unknown top-level fields
  are refused. With ``exclusive_sampling`` (the default, like current models) ``temperature`` and
  ``top_p`` may not both be sent; with ``sampling_deprecated`` neither may be sent (like the newest
  models). ``stream: true`` is refused (not implemented here).
* Headers: ``anthropic-version`` is required (400). If the server has an ``api_key``, the request
  must carry it as ``x-api-key`` or ``Authorization: Bearer`` (the SDK since 2.x sends the latter);
  otherwise 401 ``authentication_error``.
* Answers: ``responder(body)`` returns the reply text (default: the text of the last message).
  It is cut at the first stop sequence (``stop_reason`` ``stop_sequence``) and to ``max_tokens``
  words (``stop_reason`` ``max_tokens``). Usage counts whitespace-separated words: input tokens over
  the system prompt and every message, output tokens over the reply.
* Faults apply one per request in queued order (``add_faults``; ``None`` is one normal answer) or to
  every request (``set_persistent_fault``); kinds are listed in ``MESSAGE_FAULT_KINDS``.
* Every request that reaches the route is recorded in ``requests`` (parsed body, or None if the
  body is not JSON) and ``request_headers`` (names lower-cased) before validation, delays or faults.

Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, cast

from econash.testing._http_server import LoopbackHandler, LoopbackServer

__all__ = ["MESSAGE_FAULT_KINDS", "MessageFault", "MessagesServer", "count_words"]

Responder = Callable[[dict[str, Any]], str]

#: Fault kinds and what the server does for each.
MESSAGE_FAULT_KINDS: dict[str, str] = {
    "rate_limit": "429 rate_limit_error with a retry-after header (seconds)",
    "overloaded": "529 overloaded_error",
    "server_error": "500 api_error (or MessageFault.status)",
    "timeout": "wait MessageFault.delay_s seconds (default 5), then answer normally",
    "reset": "close the connection abruptly (TCP RST) without a response",
    "malformed": "200, Content-Type application/json, with a body that is not valid JSON",
    "empty": "200 with a message whose content is []",
    "auth": "401 authentication_error",
    "permission": "403 permission_error",
    "not_found": "404 not_found_error naming the requested model",
    "bad_request": "400 invalid_request_error",
    "prompt_too_long": "400 invalid_request_error: prompt is too long",
    "request_too_large": "413 request_too_large",
}

_STATUS = {"rate_limit": 429, "overloaded": 529, "server_error": 500, "auth": 401, "permission": 403,
           "not_found": 404, "bad_request": 400, "prompt_too_long": 400, "request_too_large": 413}

#: Top-level request fields the API accepts (a subset of its full list; enough for text messages).
KNOWN_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "metadata", "tools", "tool_choice", "thinking", "service_tier", "output_config", "container",
    "cache_control", "inference_geo", "speed", "diagnostics",
})


@dataclass(frozen=True)
class MessageFault:
    """One injected failure: ``kind`` is a key of ``MESSAGE_FAULT_KINDS``.

    ``retry_after`` (seconds, None for no header) tunes ``rate_limit``; ``delay_s`` tunes
    ``timeout``; ``status`` and ``message`` override an error kind's status and message.
    """

    kind: str
    retry_after: float | None = 0.05
    delay_s: float = 5.0
    status: int | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in MESSAGE_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(MESSAGE_FAULT_KINDS)}")

    @classmethod
    def of(cls, fault: MessageFault | str | None) -> MessageFault | None:
        if fault is None or isinstance(fault, MessageFault):
            return fault
        if isinstance(fault, str):
            return cls(fault)
        raise TypeError(f"a fault must be a MessageFault, a kind name or None, got {fault!r}")


def count_words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    """A content (string or list of blocks) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def echo_last_message(body: dict[str, Any]) -> str:
    return _text(body["messages"][-1].get("content"))


def error_body(type_: str, message: str) -> dict[str, Any]:
    """An Anthropic error body."""
    return {"type": "error", "error": {"type": type_, "message": message}}


class _Invalid(Exception):
    """A request the API would refuse with 400 invalid_request_error."""


def _check_blocks(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise _Invalid(f"{where}: Input should be a valid string or a non-empty list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _Invalid(f"{where}.{i}: this server accepts only text blocks ({{\"type\": \"text\", \"text\": ...}})")


def validate(body: Any, *, exclusive_sampling: bool, sampling_deprecated: bool) -> None:
    """Raise _Invalid with the API's kind of message if ``body`` is not a valid Messages request."""
    if not isinstance(body, dict):
        raise _Invalid("Request body must be a JSON object")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise _Invalid(f"{unknown[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _Invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _Invalid("max_tokens: Field required and must be a positive integer")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages: Field required and must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise _Invalid(f"messages: roles must alternate between \"user\" and \"assistant\", starting with "
                           f"\"user\" (messages.{i} is \"{message['role']}\")")
        _check_blocks(message.get("content"), f"messages.{i}.content")
    if "system" in body:
        _check_blocks(body["system"], "system")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1):
            raise _Invalid(f"{name}: Input should be less than or equal to 1 and greater than or equal to 0")
    if sampling_deprecated:
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                raise _Invalid(f"`{name}` is deprecated for this model.")
    if exclusive_sampling and "temperature" in body and "top_p" in body:
        raise _Invalid("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _Invalid("stop_sequences: Input should be a list of strings")
        if any(not s.strip() for s in stops):
            raise _Invalid("stop_sequences: each stop sequence must contain non-whitespace")
    if body.get("stream"):
        raise _Invalid("stream: MessagesServer does not implement streaming")


class _Handler(LoopbackHandler):
    server_version = "MessagesServer/1.0"

    @property
    def owner(self) -> MessagesServer:
        """The server this handler answers for, as its own class (the shared base knows only LoopbackServer)."""
        return cast(MessagesServer, self.server.owner)

    def _extra_headers(self) -> dict[str, str]:
        return {"request-id": f"req_loopback_{self.owner.request_count}"}

    def _error(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(error_body(type_, message)).encode("utf-8"), headers=headers)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            return self._error(404, "not_found_error", f"Not found: {self.command} {self.path}")
        owner = self.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body: Any = json.loads(raw.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        fault = owner._record(body, headers)
        if owner._delay(owner.latency_s):
            return self._reset()
        if not owner._authorised(headers):
            return self._error(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return self._error(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            validate(body, exclusive_sampling=owner.exclusive_sampling, sampling_deprecated=owner.sampling_deprecated)
        except _Invalid as exc:
            return self._error(400, "invalid_request_error", str(exc))
        if fault is None:
            return self._answer(body)
        self._apply_fault(fault, body)

    def do_GET(self) -> None:  # noqa: N802
        self._error(404, "not_found_error", f"Not found: {self.command} {self.path}")

    def _answer(self, body: dict[str, Any], text: str | None = None) -> None:
        owner = self.owner
        stop_reason, stop_sequence = "end_turn", None
        if text is None:
            try:
                text = str(owner.responder(body) or "")
            except Exception as exc:  # a broken responder is the test's bug: report it as a 500
                owner.errors.append(exc)
                return self._error(500, "api_error", f"MessagesServer responder raised {type(exc).__name__}: {exc}")
            cuts = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s in text]
            if cuts:
                index, stop_sequence = min(cuts)
                text, stop_reason = text[:index], "stop_sequence"
            words = text.split()
            if len(words) > body["max_tokens"]:
                text, stop_reason, stop_sequence = " ".join(words[: body["max_tokens"]]), "max_tokens", None
        prompt = count_words(_text(body.get("system", ""))) + sum(count_words(_text(m.get("content")))
                                                                  for m in body["messages"])
        content = [{"type": "text", "text": text}] if text else []
        self._send(200, json.dumps({
            "id": f"msg_loopback_{owner.request_count}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {"input_tokens": prompt, "output_tokens": count_words(text)},
        }).encode("utf-8"))

    def _apply_fault(self, fault: MessageFault, body: dict[str, Any]) -> None:
        kind = fault.kind
        if kind == "timeout":
            if self.owner._delay(fault.delay_s):
                return self._reset()
            return self._answer(body)
        if kind == "reset":
            return self._reset()
        if kind == "malformed":
            return self._send(200, b'{"id": "msg_broken", "type": "message", "content": [{"ty')
        if kind == "empty":
            return self._answer(body, text="")
        status = fault.status or _STATUS[kind]
        headers: dict[str, str] = {}
        model = body["model"]
        if kind == "rate_limit":
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            type_, message = "rate_limit_error", ("This request would exceed your organization's rate limit of "
                                                  "50 requests per minute. Please try again later.")
        elif kind == "overloaded":
            type_, message = "overloaded_error", "Overloaded"
        elif kind == "auth":
            type_, message = "authentication_error", "invalid x-api-key"
        elif kind == "permission":
            type_, message = "permission_error", "Your API key does not have permission to use the specified resource."
        elif kind == "not_found":
            type_, message = "not_found_error", f"model: {model}"
        elif kind == "bad_request":
            type_, message = "invalid_request_error", "Invalid request: the request body failed validation."
        elif kind == "prompt_too_long":
            type_, message = "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
        elif kind == "request_too_large":
            type_, message = "request_too_large", "Request exceeds the maximum allowed number of bytes."
        else:  # server_error
            type_, message = "api_error", "Internal server error"
        self._error(status, type_, fault.message or message, headers)


class MessagesServer(LoopbackServer[MessageFault]):
    """An Anthropic Messages API server on 127.0.0.1 with fault injection (see the module docstring).

    Use as a context manager, or call ``start()`` and ``stop()``. ``url`` (``http://127.0.0.1:PORT``)
    is what the anthropic SDK takes as ``base_url``. Every /v1/messages request is recorded in
    ``requests`` (None where the body was not JSON) and ``request_headers``; responder exceptions in
    ``errors`` (each was answered with a 500).
    """

    handler = _Handler
    parse_fault = staticmethod(MessageFault.of)

    def __init__(self, responder: Responder | None = None, *, api_key: str | None = None, latency_s: float = 0.0,
                 faults: Iterable[MessageFault | str | None] = (), exclusive_sampling: bool = True,
                 sampling_deprecated: bool = False) -> None:
        self.responder: Responder = responder or echo_last_message
        self.api_key = api_key
        self.exclusive_sampling = exclusive_sampling
        self.sampling_deprecated = sampling_deprecated
        super().__init__(latency_s=latency_s, faults=faults)

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") == self.api_key or bearer == f"Bearer {self.api_key}"
