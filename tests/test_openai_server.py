"""The loopback OpenAI-compatible FaultServer: its wire format and every fault, over plain HTTP."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from econash.testing.openai_server import FAULT_KINDS, Fault, FaultServer


def chat_body(*contents: str, model: str = "some-model") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": c} for c in contents]}


def post(server: FaultServer, body: dict | bytes, path: str = "/v1/chat/completions", timeout: float = 5.0):
    """POST and return (status, headers, raw body); HTTP errors are returned, not raised."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json",
                                                                      "Authorization": "Bearer sk-test"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_chat_completion_has_the_openai_shape_and_word_usage():
    with FaultServer() as server:
        assert server.base_url == server.url + "/v1" and server.url.startswith("http://127.0.0.1:")
        body = {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "what is two plus two"}]}
        status, headers, raw = post(server, body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    data = json.loads(raw)
    assert data["object"] == "chat.completion" and data["id"] and isinstance(data["created"], int)
    assert data["model"] == "fault-server-model"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "what is two plus two"}
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert server.requests == [body] and server.request_count == 1
    assert server.request_headers[0]["authorization"] == "Bearer sk-test"


def test_responder_and_model_none_echoes_the_requested_model():
    seen = []

    def responder(body):
        seen.append(body["temperature"])
        return "forty two"

    with FaultServer(responder, model=None) as server:
        status, _, raw = post(server, {**chat_body("q", model="asked-for"), "temperature": 0.3})
    data = json.loads(raw)
    assert status == 200 and seen == [0.3]
    assert data["choices"][0]["message"]["content"] == "forty two" and data["model"] == "asked-for"
    assert data["usage"]["completion_tokens"] == 2


def test_models_endpoint_and_unknown_paths():
    with FaultServer(model="served-model") as server:
        with urllib.request.urlopen(server.base_url + "/models", timeout=5) as resp:
            models = json.loads(resp.read())
        status, _, raw = post(server, chat_body("x"), path="/v1/nope")
        get_status = None
        try:
            urllib.request.urlopen(server.url + "/elsewhere", timeout=5)
        except urllib.error.HTTPError as err:
            get_status, get_body = err.code, json.loads(err.read())
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["served-model"]
    assert status == 404 and json.loads(raw)["error"]["code"] == "unknown_url"
    assert get_status == 404 and "message" in get_body["error"]
    assert server.request_count == 0  # only chat requests are recorded


def test_invalid_json_request_is_a_400_and_consumes_no_fault():
    with FaultServer(faults=["server_error"]) as server:
        status, _, raw = post(server, b"{not json")
        assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
        assert server.pending_faults == 1


def test_keep_alive_connection_serves_several_requests():
    with FaultServer() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for word in ("one", "two", "three"):
            conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body(word)),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Connection") != "close"
            assert json.loads(resp.read())["choices"][0]["message"]["content"] == word
        # error answers keep the connection usable too (correct Content-Length)
        server.add_faults("server_error")
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("x")))
        resp = conn.getresponse()
        assert resp.status == 500 and json.loads(resp.read())["error"]["type"] == "server_error"
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("after")))
        assert json.loads(conn.getresponse().read())["choices"][0]["message"]["content"] == "after"
        conn.close()


def test_rate_limit_sends_retry_after_and_an_openai_error_body():
    with FaultServer() as server:
        server.add_faults("rate_limit", Fault("rate_limit", retry_after=2.5, retry_after_ms=1500),
                          Fault("rate_limit", retry_after=None))
        first = post(server, chat_body("a"))
        second = post(server, chat_body("b"))
        third = post(server, chat_body("c"))
    assert first[0] == 429 and first[1]["Retry-After"] == "0.05"
    error = json.loads(first[2])["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests" and error["message"]
    assert second[1]["Retry-After"] == "2.5" and second[1]["retry-after-ms"] == "1500"
    assert third[0] == 429 and third[1]["Retry-After"] is None
    assert server.request_count == 3  # faulted requests are recorded


@pytest.mark.parametrize("kind,status,code", [
    ("server_error", 500, "internal_server_error"),
    ("unavailable", 503, "service_unavailable"),
    ("auth", 401, "invalid_api_key"),
    ("bad_request", 400, None),
    ("context_length", 400, "context_length_exceeded"),
    ("not_found", 404, "model_not_found"),
    ("quota", 429, "insufficient_quota"),
])
def test_error_faults_give_their_status_and_body(kind, status, code):
    with FaultServer(faults=[kind]) as server:
        got_status, headers, raw = post(server, chat_body("x"))
        after = post(server, chat_body("fine"))
    error = json.loads(raw)["error"]
    assert got_status == status and headers["Content-Type"] == "application/json"
    assert error["code"] == code and error["message"] and error["type"]
    if kind == "context_length":
        assert "context length" in error["message"]
    assert after[0] == 200  # one fault per request


def test_status_override_and_unknown_kind():
    with FaultServer(faults=[Fault("server_error", status=502, message="bad gateway")]) as server:
        status, _, raw = post(server, chat_body("x"))
    assert status == 502 and json.loads(raw)["error"]["message"] == "bad gateway"
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")
    assert set(FAULT_KINDS) >= {"rate_limit", "server_error", "unavailable", "timeout", "reset", "malformed",
                                "empty", "auth", "bad_request", "context_length"}


def test_malformed_is_a_200_whose_body_is_not_json():
    with FaultServer(faults=["malformed"]) as server:
        status, headers, raw = post(server, chat_body("x"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


def test_empty_gives_empty_content_and_zero_completion_tokens():
    with FaultServer(faults=["empty", Fault("empty", finish_reason="length")]) as server:
        first = json.loads(post(server, chat_body("three words here"))[2])
        second = json.loads(post(server, chat_body("x"))[2])
    assert first["choices"][0]["message"]["content"] == "" and first["choices"][0]["finish_reason"] == "stop"
    assert first["usage"] == {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}
    assert second["choices"][0]["finish_reason"] == "length"


def test_reset_closes_the_connection_without_a_response():
    with FaultServer(faults=["reset"]) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("x")))
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine)):
            conn.getresponse()
        conn.close()
        assert server.request_count == 1
        assert post(server, chat_body("ok"))[0] == 200  # the server itself is fine


def test_timeout_fault_delays_the_answer_and_a_short_client_timeout_fires():
    with FaultServer(faults=[Fault("timeout", delay_s=0.4), Fault("timeout", delay_s=2.0)]) as server:
        started = time.perf_counter()
        status, _, raw = post(server, chat_body("slow answer"))
        elapsed = time.perf_counter() - started
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "slow answer"
        assert 0.35 <= elapsed < 1.5
        started = time.perf_counter()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            post(server, chat_body("x"), timeout=0.3)
        assert time.perf_counter() - started < 1.5


def test_persistent_fault_applies_until_cleared_and_leaves_the_queue():
    with FaultServer() as server:
        server.add_faults(None, "auth")
        server.set_persistent_fault("unavailable")
        statuses = [post(server, chat_body("x"))[0] for _ in range(4)]
        assert statuses == [503] * 4 and server.pending_faults == 2
        server.set_persistent_fault(None)
        statuses = [post(server, chat_body("x"))[0] for _ in range(3)]
    assert statuses == [200, 401, 200]


def test_concurrent_requests_with_latency_are_not_serialised():
    with FaultServer(latency_s=0.2) as server:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(lambda i: post(server, chat_body(f"n{i}")), range(24)))
        elapsed = time.perf_counter() - started
    assert [r[0] for r in results] == [200] * 24
    assert sorted(json.loads(r[2])["choices"][0]["message"]["content"] for r in results) == sorted(
        f"n{i}" for i in range(24))
    assert server.request_count == 24
    assert 0.2 <= elapsed < 1.0, f"24 requests at 0.2 s latency took {elapsed:.2f} s"


def test_stop_is_prompt_during_a_timeout_fault_and_leaves_no_threads():
    before = set(threading.enumerate())
    server = FaultServer(faults=[Fault("timeout", delay_s=30)]).start()
    outcome = []

    def call():
        try:
            outcome.append(post(server, chat_body("x"), timeout=10))
        except OSError as exc:  # the stopping server drops the connection it was holding
            outcome.append(exc)

    client = threading.Thread(target=call, daemon=True)
    client.start()
    deadline = time.monotonic() + 5
    while server.request_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.request_count == 1
    # an idle keep-alive connection must not hold up stop() either
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    idle.request("GET", "/v1/models")
    idle.getresponse().read()
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 1.5
    client.join(5)
    idle.close()
    assert not client.is_alive() and isinstance(outcome[0], OSError)
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []
    assert not server.running
    server.stop()  # idempotent


def test_start_stop_and_errors_of_the_responder():
    def broken(body):
        raise RuntimeError("responder bug")

    server = FaultServer(broken)
    with pytest.raises(RuntimeError, match="not running"):
        server.url
    with server:
        status, _, raw = post(server, chat_body("x"))
    assert status == 500 and "responder bug" in json.loads(raw)["error"]["message"]
    assert len(server.errors) == 1
    server.reset()
    assert server.requests == [] and server.errors == []
