"""`econash report` opened in a real browser: headless Chromium renders the page of a run and of a
compare folder, and the rendered DOM has its tables, its decoded images and every question, while no
request leaves the page.

How a request would be seen: the runs' replies hold markup (an <img>, a <script>, a stylesheet link)
pointing at a server on 127.0.0.1 that counts what it is asked for, and Chromium runs with a proxy on a
closed port, so anything else it tried to fetch fails instead of reaching the network. Chromium sends
loopback requests around the proxy, so a request the page made would reach the counting server; a
control page with a plain <img> checks that it does. Debian's `chromium` package is installed by
.ci/run; without a chromium binary the test is skipped and says so.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import struct
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest
from report_runs import invoke, make_runs

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium binary on PATH (Debian: apt-get install "
                                                        "chromium; .ci/run installs it), so the report cannot be "
                                                        "rendered in a browser here")


class CountingServer(http.server.ThreadingHTTPServer):
    """Records the path of every request it gets and answers 404."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                server.requests.append(self.path)
                self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def server() -> Iterator[CountingServer]:
    counting = CountingServer()
    thread = threading.Thread(target=counting.serve_forever, daemon=True)
    thread.start()
    yield counting
    counting.shutdown()
    counting.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless with the flags of a locked-down CI browser; every fetch off loopback goes to a
    proxy on a closed port."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{closed_port()}",
             "--virtual-time-budget=3000", "--window-size=1200,2400"]
    return subprocess.run([str(BROWSER), *flags, *extra, page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)


class RenderedDom(HTMLParser):
    """What the browser built: the tags, each image's source, and the text."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def pages(tmp_path_factory, server) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    runs = make_runs(root / "runs", url=f"http://127.0.0.1:{server.server_address[1]}")
    written = {}
    for name in ("econash", "cot", "compare"):
        written[name] = root / f"{name}.html"
        result = invoke("report", str(runs[name]), "-o", str(written[name]))
        assert result.exit_code == 0, result.output
    return written


def test_the_control_page_shows_a_request_would_be_seen(server, tmp_path):
    port = server.server_address[1]
    page = tmp_path / "control.html"
    page.write_text(f'<!DOCTYPE html><html><body><img src="http://127.0.0.1:{port}/control.png"></body></html>')
    result = chromium(page, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "/control.png" in server.requests


@pytest.mark.parametrize("name, tables, images, questions", [
    ("econash", 4, 2, 2),   # summary, facts, actions, one facts table per question ...
    ("cot", 2, 2, 3),
    ("compare", 2, 2, 2),   # compare's table and its settings; accuracy against tokens, tokens per role
])
def test_report_renders_with_its_tables_and_images_and_makes_no_request(pages, server, tmp_path, name, tables,
                                                                          images, questions):
    server.requests.clear()
    result = chromium(pages[name], tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = RenderedDom(result.stdout)
    assert dom.tags.count("table") >= tables, dom.tags.count("table")
    assert "script" not in dom.tags and "link" not in dom.tags
    assert len(dom.images) == images and all(src.startswith("data:image/png;base64,") for src in dom.images)
    text = "".join(dom.text)
    assert text.count("tokens") > questions and ("right" in text or "wrong" in text)
    assert dom.tags.count("details") >= questions
    if name == "cot":  # the model's markup is shown as text, not built into elements
        assert '<img src="http://127.0.0.1:' in text and "<script>fetch(" in text
    assert server.requests == [], f"the page requested {server.requests}"


def test_report_screenshot_shows_the_page(pages, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium(pages["econash"], tmp_path / "profile", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1200, 2400)
    assert len(data) > 50_000  # tables, text and plots, not a blank page
