"""A real OpenAI-compatible HTTP server on 127.0.0.1, with fault injection, for tests and benchmarks.

``FaultServer`` speaks enough of the OpenAI wire format for the ``openai`` SDK (and any other
client) to use it like a real server: ``POST /v1/chat/completions`` and ``GET /v1/models``. It runs
a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) on a free loopback port in a background thread,
so concurrent requests are answered concurrently, and it can be told to fail in the ways real
servers fail: rate limits with ``Retry-After``, 5xx errors, slow answers, dropped connections,
broken JSON, empty completions, rejected keys and over-long prompts.

Example::

    from econash.testing.openai_server import Fault, FaultServer

    with FaultServer(responder=lambda body: "42") as server:
        server.add_faults("rate_limit", Fault("server_error", status=502), None)
        # point a client at server.base_url ("http://127.0.0.1:PORT/v1"), with any API key:
        # request 1 gets a 429, request 2 a 502, request 3 and later the answer "42".
        ...
        assert server.request_count == 3
        assert server.requests[-1]["messages"][-1]["content"] == "..."

Behaviour in detail:

* Answers: ``responder(body)`` gets the parsed JSON body of a chat request and returns the reply
  text; the default echoes the content of the last message. Usage counts whitespace-separated
  words: prompt tokens over every message's content, completion tokens over the reply. The
  response's ``model`` is the server's ``model`` (like a single-model local server), or the
  requested model when the server was built with ``model=None``.
* Faults apply to chat requests only, one per request, in the order queued (``add_faults`` or the
  constructor's ``faults``); ``None`` in the queue means one normal answer. A persistent fault
  (``set_persistent_fault``) applies to every chat request while it is set, and leaves the queue
  untouched. Fault kinds are listed in ``FAULT_KINDS``; see :class:`Fault` for their parameters.
* Every chat request body is recorded in ``requests`` (and its headers, names lower-cased, in
  ``request_headers``),
  faulted ones included, before any delay or fault is applied.
* ``latency_s`` delays every request; delays wait on an event, so they neither serialise
  concurrent requests nor hold up ``stop()``.
* ``slots`` makes it serve that many chat requests at once, like a llama.cpp server (the Python
  server runs one): the others wait their turn, their clients' timeouts running, and one whose
  client hung up meanwhile is dropped unanswered (counted in ``abandoned``). ``open_requests`` and
  ``peak_open_requests`` count the chat requests received and not yet answered, queued ones included.

The module needs nothing beyond the standard library.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, cast

from econash.testing._http_server import LoopbackHandler, LoopbackServer

__all__ = ["FAULT_KINDS", "Fault", "FaultServer", "Responder", "count_words"]

Responder = Callable[[dict[str, Any]], str]

#: Fault kinds and what the server does for each.
FAULT_KINDS: dict[str, str] = {
    "rate_limit": "429 with a Retry-After header (seconds) and an OpenAI rate-limit error body",
    "quota": "429 with code insufficient_quota: the account is out of credit, retrying will not help",
    "server_error": "500 (or Fault.status) with an OpenAI server-error body",
    "unavailable": "503 with an OpenAI server-error body",
    "timeout": "wait Fault.delay_s seconds (default 5), then answer normally",
    "reset": "close the connection abruptly (TCP RST) without sending any response",
    "malformed": "200, Content-Type application/json, with a body that is not valid JSON",
    "empty": "200 with a completion whose content is empty (finish_reason Fault.finish_reason)",
    "auth": "401 with code invalid_api_key",
    "bad_request": "400 with type invalid_request_error",
    "context_length": "400 with code context_length_exceeded",
    "not_found": "404 with code model_not_found, naming the requested model",
}

_DEFAULT_STATUS = {
    "rate_limit": 429, "quota": 429, "server_error": 500, "unavailable": 503, "auth": 401,
    "bad_request": 400, "context_length": 400, "not_found": 404,
}


@dataclass(frozen=True)
class Fault:
    """One injected failure. ``kind`` is a key of ``FAULT_KINDS``; the other fields tune it:

    * ``retry_after``: seconds sent in ``Retry-After`` by ``rate_limit`` (None sends no header).
    * ``retry_after_ms``: if set, ``rate_limit`` also sends ``retry-after-ms`` with this value.
    * ``delay_s``: how long ``timeout`` waits before answering.
    * ``status``: overrides the HTTP status of an error kind (for example 502 for ``server_error``).
    * ``message``: overrides the error message of an error kind.
    * ``finish_reason``: the finish reason of an ``empty`` completion.
    """

    kind: str
    retry_after: float | None = 0.05
    retry_after_ms: float | None = None
    delay_s: float = 5.0
    status: int | None = None
    message: str | None = None
    finish_reason: str = "stop"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(FAULT_KINDS)}")

    @classmethod
    def of(cls, fault: Fault | str | None) -> Fault | None:
        """Accept a Fault, a kind name, or None (a normal answer)."""
        if fault is None or isinstance(fault, Fault):
            return fault
        if isinstance(fault, str):
            return cls(fault)
        raise TypeError(f"a fault must be a Fault, a kind name or None, got {fault!r}")


def count_words(text: str) -> int:
    """The server's deterministic token count: whitespace-separated words."""
    return len(text.split())


def _content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def echo_last_message(body: dict[str, Any]) -> str:
    """The default responder: the content of the last message."""
    messages = body.get("messages") or []
    return _content_text(messages[-1].get("content")) if messages and isinstance(messages[-1], dict) else ""


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Handler(LoopbackHandler):
    server_version = "FaultServer/1.0"

    @property
    def owner(self) -> FaultServer:
        """The server this handler answers for, as its own class (the shared base knows only LoopbackServer)."""
        return cast(FaultServer, self.server.owner)

    # ------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), headers=headers)

    # ------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        owner = self.owner
        if self.path.split("?")[0].rstrip("/") == "/v1/models":
            if owner._delay(owner.latency_s):
                return self._reset()
            models = [owner.model or "fault-server-model"]
            data = [{"id": m, "object": "model", "created": owner.started_at, "owned_by": "econash"} for m in models]
            return self._send_json(200, {"object": "list", "data": data})
        self._not_found()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        raw = self._read_body()
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            return self._not_found()
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self._send_json(400, error_body(f"We could not parse the JSON body of your request ({exc}).",
                                                   "invalid_request_error"))
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._send_json(400, error_body("'messages' is a required property and must be a list.",
                                                   "invalid_request_error", param="messages"))
        owner = self.owner
        fault = owner._record(body, {k.lower(): v for k, v in self.headers.items()})
        with owner._open_request():
            if not owner._take_slot():
                return self._reset()  # stopping
            try:
                if owner.slots is not None and self._client_gone():
                    with owner._lock:
                        owner.abandoned += 1
                    return None
                return self._serve_chat(body, fault)
            finally:
                owner._give_slot()

    def _client_gone(self) -> bool:
        """Whether the client closed the connection while its request waited for a slot."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _serve_chat(self, body: dict[str, Any], fault: Fault | None) -> None:
        owner = self.owner
        if owner._delay(owner.latency_s):
            return self._reset()
        if body.get("stream"):
            return self._send_json(400, error_body("FaultServer does not support stream=true.",
                                                   "invalid_request_error", param="stream"))
        if fault is None:
            return self._answer(body)
        self._apply_fault(fault, body)

    def do_PUT(self) -> None:  # noqa: N802
        self._read_body()
        self._not_found()

    do_DELETE = do_PATCH = do_PUT  # noqa: N815

    def _not_found(self) -> None:
        self._send_json(404, error_body(f"Unknown request URL: {self.command} {self.path}.",
                                        "invalid_request_error", code="unknown_url"))

    def _answer(self, body: dict[str, Any], text: str | None = None, finish_reason: str = "stop") -> None:
        owner = self.owner
        if text is None:
            try:
                text = owner.responder(body)
            except Exception as exc:  # a broken responder is the test's bug: report it as a 500
                owner.errors.append(exc)
                return self._send_json(500, error_body(f"FaultServer responder raised {type(exc).__name__}: {exc}",
                                                       "server_error"))
            text = "" if text is None else str(text)
        requested = body.get("n")
        n = requested if isinstance(requested, int) and requested > 0 else 1
        prompt = sum(count_words(_content_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
        completion = count_words(text) * n
        choice = {"message": {"role": "assistant", "content": text}, "finish_reason": finish_reason, "logprobs": None}
        self._send_json(200, {
            "id": f"chatcmpl-fault-{owner.request_count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": owner.model or body.get("model") or "fault-server-model",
            "choices": [{"index": i, **choice} for i in range(n)],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        })

    def _apply_fault(self, fault: Fault, body: dict[str, Any]) -> None:
        kind = fault.kind
        status = fault.status or _DEFAULT_STATUS.get(kind, 500)
        model = body.get("model") or "unknown"
        if kind == "timeout":
            if self.owner._delay(fault.delay_s):
                return self._reset()
            return self._answer(body)
        if kind == "reset":
            return self._reset()
        if kind == "malformed":
            return self._send(200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess')
        if kind == "empty":
            return self._answer(body, text="", finish_reason=fault.finish_reason)
        headers: dict[str, str] = {}
        if kind == "rate_limit":
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
            err = error_body(fault.message or f"Rate limit reached for {model} on requests per min (RPM). "
                             "Please try again later.", "requests", code="rate_limit_exceeded")
        elif kind == "quota":
            err = error_body(fault.message or "You exceeded your current quota, please check your plan and "
                             "billing details.", "insufficient_quota", code="insufficient_quota")
        elif kind == "auth":
            err = error_body(fault.message or "Incorrect API key provided. You can find your API key at "
                             "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                             code="invalid_api_key")
        elif kind == "bad_request":
            err = error_body(fault.message or "Invalid request: the request body failed validation.",
                             "invalid_request_error")
        elif kind == "context_length":
            prompt = sum(count_words(_content_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
            err = error_body(fault.message or "This model's maximum context length is 4096 tokens. However, your "
                             f"messages resulted in {prompt + 4096} tokens. Please reduce the length of the messages "
                             "(context length exceeded).", "invalid_request_error", code="context_length_exceeded",
                             param="messages")
        elif kind == "not_found":
            err = error_body(fault.message or f"The model `{model}` does not exist or you do not have access to it.",
                             "invalid_request_error", code="model_not_found", param="model")
        elif kind == "unavailable":
            err = error_body(fault.message or "The server is overloaded or not ready yet.", "server_error",
                             code="service_unavailable")
        else:  # server_error
            err = error_body(fault.message or "The server had an error while processing your request. Sorry about that!",
                             "server_error", code="internal_server_error")
        self._send_json(status, err, headers=headers)


class FaultServer(LoopbackServer[Fault]):
    """An OpenAI-compatible server on 127.0.0.1 with fault injection (see the module docstring).

    Use as a context manager, or call ``start()`` and ``stop()``. ``url`` is
    ``http://127.0.0.1:PORT``; ``base_url`` is ``url + "/v1"``, what OpenAI clients take.
    Chat requests are recorded in ``requests`` and ``request_headers``; responder exceptions in
    ``errors`` (each was answered with a 500).
    """

    handler = _Handler
    parse_fault = staticmethod(Fault.of)

    def __init__(self, responder: Responder | None = None, *, latency_s: float = 0.0,
                 faults: Iterable[Fault | str | None] = (), model: str | None = "fault-server-model",
                 slots: int | None = None) -> None:
        if slots is not None and slots < 1:
            raise ValueError("slots must be >= 1 (None: no limit)")
        self.responder: Responder = responder or echo_last_message
        self.model = model
        self.started_at = int(time.time())
        #: chat requests served at once (None: all of them); the rest wait, as on a llama.cpp server
        self.slots = slots
        self._slot_gate = threading.Semaphore(slots) if slots is not None else None
        #: chat requests received and not yet answered (queued for a slot included), and their peak
        self.open_requests = 0
        self.peak_open_requests = 0
        #: queued requests dropped because their client hung up before a slot came free
        self.abandoned = 0
        super().__init__(latency_s=latency_s, faults=faults)

    @contextlib.contextmanager
    def _open_request(self) -> Iterator[None]:
        with self._lock:
            self.open_requests += 1
            self.peak_open_requests = max(self.peak_open_requests, self.open_requests)
        try:
            yield
        finally:
            with self._lock:
                self.open_requests -= 1

    def _take_slot(self) -> bool:
        """Wait for a free slot (False: the server is stopping)."""
        if self._slot_gate is None:
            return True
        while not self._slot_gate.acquire(timeout=0.05):
            if self._stopping.is_set():
                return False
        return True

    def _give_slot(self) -> None:
        if self._slot_gate is not None:
            self._slot_gate.release()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the base URL an OpenAI client takes."""
        return self.url + "/v1"

    def clear_faults(self) -> None:
        """Drop queued faults and the persistent fault."""
        with self._lock:
            self._queue.clear()
            self._persistent = None

    @property
    def pending_faults(self) -> int:
        """How many queued entries (faults or None) are still waiting for a request."""
        with self._lock:
            return len(self._queue)
