"""The console app in-process on a fresh SQLite database, with a small fake of Rasa's HTTP API."""

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from bot.services.context import Services
from bot.settings import Settings
from bot.web.app import create_app

RASA_TOKEN = "test-rasa-token"


@dataclass
class FakeRasa:
    """Records every call; keeps a tracker (events, paused) per conversation like Rasa does."""

    calls: list[tuple[str, str, dict]] = field(default_factory=list)
    trackers: dict[str, dict] = field(default_factory=dict)
    url: str = ""

    def tracker(self, sender: str) -> dict:
        return self.trackers.setdefault(sender, {"sender_id": sender, "paused": False, "events": []})

    def calls_for(self, sender: str) -> list[tuple[str, dict]]:
        """(what, body) of the calls about one conversation, GETs left out."""
        prefix = f"/conversations/{sender}/"
        return [(path.removeprefix(prefix), body) for method, path, body in self.calls
                if method == "POST" and path.startswith(prefix)]


def _handler(fake: FakeRasa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            if parse_qs(url.query).get("token") != [RASA_TOKEN]:
                self._reply(401, {"status": "failure", "reason": "NotAuthenticated"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            fake.calls.append((method, url.path, body))
            match = re.fullmatch(r"/conversations/([^/]+)/(tracker|tracker/events|trigger_intent)", url.path)
            if not match:
                self._reply(404, {})
                return
            tracker = fake.tracker(match.group(1))
            if match.group(2) == "tracker/events":
                for event in body:
                    if event["event"] in ("pause", "resume"):
                        tracker["paused"] = event["event"] == "pause"
                    tracker["events"].append({"event": event["event"], "timestamp": 1.0})
            elif match.group(2) == "trigger_intent":
                tracker["events"].append({"event": "user", "text": f"EXTERNAL: {body['name']}", "timestamp": 2.0,
                                          "parse_data": {"intent": {"name": body["name"]}}})
                if body["name"] == "EXTERNAL_agent_message":
                    tracker["events"].append({"event": "bot", "text": body["entities"]["agent_text"],
                                              "timestamp": 2.0, "data": {}})
            self._reply(200, tracker)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Console:
    client: TestClient
    svc: Services
    rasa: FakeRasa
    var_dir: Path

    def sign_in(self, username: str, password: str | None = None) -> str:
        """Sign in as a demo account; returns the session's CSRF token for form posts."""
        self.client.cookies.clear()
        page = self.client.get("/console/signin")
        response = self.client.post("/console/signin", data={
            "username": username, "password": password or f"demo-{username}", "csrf": csrf_of(page.text)})
        assert response.status_code == 200, response.text[:500]
        return csrf_of(response.text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "every console page with a form carries the CSRF token"
    return match.group(1)


@pytest.fixture
def console(sqlite_svc: Services, sqlite_url: str, tmp_path: Path, fake_rasa: FakeRasa) -> Console:
    settings = Settings(profile="test", var_dir=tmp_path, database_url=sqlite_url, rasa_url=fake_rasa.url,
                        rasa_token=RASA_TOKEN, secret_key="console-test-secret", trust_sender_id=True,
                        embedded_worker=False, worker_interval_s=1.0, default_shop="demo", integration_key="k")
    return Console(TestClient(create_app(settings, sqlite_svc)), sqlite_svc, fake_rasa, tmp_path)
