"""Credentials written into a --base-url (``http://user:password@host/v1``, ``?key=...``) are secrets:
they never reach the run directory (manifest, events, results, summary) nor the output, and
``econash resume`` reads the URLs again from ECONASH_BASE_URL, refusing servers other than the ones
the run used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from econash.config import redact
from econash.errors import ConfigError
from econash.redaction import REDACTED, drop_secrets, restore_secrets
from econash.testing.openai_server import FaultServer

import econash
from conftest import run_cli

PASSWORD = "hunter22"


@pytest.fixture(autouse=True)
def no_urls_in_environment(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ECONASH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def answer(body: dict) -> str:
    return "The answer is 3."


def secret_url(server: FaultServer) -> str:
    return f"http://econash:{PASSWORD}@127.0.0.1:{server.port}/v1"


def every_file(run_dir: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in run_dir.rglob("*") if path.is_file())


def interrupt(run_dir: Path, keep: int) -> None:
    (run_dir / "summary.json").unlink()
    results = run_dir / "results.jsonl"
    results.write_text("".join(line + "\n" for line in results.read_text().splitlines()[:keep]))


def start(run_dir: Path, base_url: str) -> None:
    first = run_cli("run", "--backend", "openai", "--model", "m", "--base-url", base_url, "--method", "cot",
                    "--test-size", "3", "--concurrency", "1", "--display", "none", "--no-cache",
                    "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    assert PASSWORD not in first.stdout + first.stderr
    assert PASSWORD not in every_file(run_dir)


def test_a_password_in_the_url_never_reaches_the_run_directory_and_resume_asks_for_it(tmp_path):
    run_dir = tmp_path / "run"
    with FaultServer(responder=answer) as server:
        start(run_dir, secret_url(server))
        recorded = json.loads((run_dir / "manifest.json").read_text())["config"]["base_url"]
        assert recorded == f"http://{REDACTED}@127.0.0.1:{server.port}/v1"
        interrupt(run_dir, keep=1)

        missing = run_cli("resume", str(run_dir), "--display", "none")
        assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
        assert "ECONASH_BASE_URL" in missing.stderr and PASSWORD not in missing.stderr

        elsewhere = run_cli("resume", str(run_dir), "--display", "none",
                            env={"ECONASH_BASE_URL": f"http://econash:{PASSWORD}@127.0.0.2:{server.port}/v1"})
        assert elsewhere.returncode == 2 and len(elsewhere.stderr.strip().splitlines()) == 1, elsewhere.stderr
        assert "other servers" in elsewhere.stderr and PASSWORD not in elsewhere.stderr

        resumed = run_cli("resume", str(run_dir), "--display", "none", env={"ECONASH_BASE_URL": secret_url(server)})
        assert resumed.returncode == 0, resumed.stderr
        sent = len(server.request_headers)
    assert sent == 3 + 2  # the two unanswered questions were asked again, nothing else
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 3
    assert PASSWORD not in every_file(run_dir)


def test_replicas_with_passwords_resume_from_a_comma_separated_list(tmp_path):
    run_dir = tmp_path / "run"
    with FaultServer(responder=answer) as a, FaultServer(responder=answer) as b:
        urls = [secret_url(a), secret_url(b)]
        start(run_dir, ",".join(urls))
        interrupt(run_dir, keep=1)
        resumed = run_cli("resume", str(run_dir), "--display", "none", env={"ECONASH_BASE_URL": ",".join(urls)})
        assert resumed.returncode == 0, resumed.stderr
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 3
    assert PASSWORD not in every_file(run_dir)


def test_redaction_hides_user_password_and_query_and_keeps_the_server():
    config = {"base_url": ["https://u:p@api.example.com/v1?key=abc", "http://127.0.0.1:8000/v1"],
              "topology_options": {"executors": [{"backend": "openai", "base_url": "http://tok@10.0.0.1/v1"}]}}
    shown = redact(config)
    assert shown["base_url"] == [f"https://{REDACTED}@api.example.com/v1?{REDACTED}", "http://127.0.0.1:8000/v1"]
    assert shown["topology_options"]["executors"][0]["base_url"] == f"http://{REDACTED}@10.0.0.1/v1"
    # Reading a run's settings without its secrets gives the servers, without the credentials.
    assert drop_secrets(shown)["base_url"] == ["https://api.example.com/v1", "http://127.0.0.1:8000/v1"]


def test_an_executors_url_comes_back_from_its_own_variable(monkeypatch):
    recorded = {"topology": "hetero", "topology_options": {"executors": [
        {"backend": "openai", "base_url": f"http://{REDACTED}@10.0.0.1/v1"}]}}
    variable = "ECONASH_TOPOLOGY_OPTIONS__EXECUTORS__0__BASE_URL"
    with pytest.raises(ConfigError, match=variable):
        restore_secrets(recorded, econash.registries(), run_dir="r", action="resume it")
    monkeypatch.setenv(variable, "http://tok@10.0.0.1/v1")
    restored = restore_secrets(recorded, econash.registries(), run_dir="r", action="resume it")
    assert restored["topology_options"]["executors"][0]["base_url"] == "http://tok@10.0.0.1/v1"
