"""Local HTTP servers speaking providers' real wire formats, for tests reaching them through litellm.

``ProviderServer("openai")`` answers ``POST /v1/chat/completions`` as OpenAI does (an OpenAI-compatible
server such as Ollama's or vLLM's ``/v1`` speaks the same); ``ProviderServer("anthropic")`` answers
``POST /v1/messages`` as Anthropic's Messages API does, ``usage.input_tokens``/``output_tokens`` and all.
``script`` holds what the next requests get: ``"ok"``, an HTTP status (429, 500, 503) with the provider's
error JSON, or ``("sleep", seconds)`` before answering. Each answered request is kept in ``served``
with the usage it reported.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = '{"value": 7}'


@dataclass
class ProviderServer:
    kind: str
    """openai (also what an OpenAI-compatible local server speaks) or anthropic."""
    seed: int = 0
    script: list[Any] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    reply: str = REPLY
    """The text every answer carries."""

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    @property
    def api_base(self) -> str:
        """What litellm is given: OpenAI's clients add /chat/completions to a /v1 base, Anthropic's /v1/messages."""
        return self.url + "/v1" if self.kind == "openai" else self.url

    def next_action(self) -> Any:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def usage(self) -> tuple[int, int]:
        with self._lock:
            return self._random.randint(50, 40_000), self._random.randint(5, 4_000)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.requests.append({"path": path, "model": body.get("model"), "at": time.monotonic()})
        action = self.next_action()
        if isinstance(action, tuple) and action[0] == "sleep":
            time.sleep(action[1])
            action = "ok"
        if action != "ok":
            return int(action), self.error(int(action)), {"retry-after": "0"} if action == 429 else {}
        prompt, completion = self.usage()
        self.served.append({"model": body["model"], "input_tokens": prompt, "output_tokens": completion})
        if self.kind == "anthropic":
            return 200, {"id": f"msg_{len(self.served)}", "type": "message", "role": "assistant",
                         "model": body["model"],
                         "content": [{"type": "text", "text": self.reply}], "stop_reason": "end_turn",
                         "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": completion}}, {}
        return 200, {"id": f"chatcmpl-{len(self.served)}", "object": "chat.completion", "created": int(time.time()),
                     "model": body["model"], "system_fingerprint": "fp_local",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply},
                                  "finish_reason": "stop", "logprobs": None}],
                     "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                               "total_tokens": prompt + completion}}, {}

    def error(self, status: int) -> dict[str, Any]:
        if self.kind == "anthropic":
            kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
            return {"type": "error", "error": {"type": kind, "message": f"local test server: {status}"}}
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return {"error": {"message": f"local test server: {status}", "type": kind, "param": None, "code": kind}}


@contextmanager
def serving(*servers: ProviderServer) -> Iterator[tuple[ProviderServer, ...]]:
    """Each server listening on 127.0.0.1 (a free port) for the block."""
    running = []
    for provider in servers:
        class Handler(BaseHTTPRequestHandler):
            target = provider

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                status, payload, headers = self.target.answer(self.path, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        provider.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append(server)
    try:
        yield servers
    finally:
        for server in running:
            server.shutdown()
            server.server_close()


def catalog(openai: ProviderServer, anthropic: ProviderServer, local: ProviderServer, **extra: Any) -> dict[str, Any]:
    """Settings with the three providers at the servers and a model on each (fallbacks: as ``extra`` says)."""
    settings: dict[str, Any] = {
        "providers": {
            "openai": {"type": "openai", "api_base": openai.api_base, "key_env": "TEST_OPENAI_KEY"},
            "anthropic": {"type": "anthropic", "api_base": anthropic.api_base, "key_env": "TEST_ANTHROPIC_KEY"},
            "local": {"type": "openai-compatible", "api_base": local.api_base},
        },
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini", "tags": ["fast", "cheap"], "latency_ms": 400},
            "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "tags": ["code", "long-context"],
                       "latency_ms": 1500},
            "llama": {"provider": "local", "model": "llama3.1:8b", "tags": ["fast", "private"], "latency_ms": 150,
                      "input_cost_per_mtok": 0.05, "output_cost_per_mtok": 0.10},
        },
    }
    for key, value in extra.items():
        section, _, name = key.partition("__")
        if name:
            settings[section][name].update(value)
        else:
            settings[section] = value
    return settings
