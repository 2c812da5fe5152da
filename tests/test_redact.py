"""Redaction: every secret shape, planted environment canaries, nested data, no false alarms."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from aigentflow.exceptions import ConfigError
from aigentflow.redact import REDACTED, Redactor, looks_secret_name

REPO_ROOT = Path(__file__).resolve().parents[1]

SECRETS_BY_SHAPE = {
    "openai": "sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij",
    "openai_project": "sk-proj-AbCdEf_GhIjKlMnOp-QrStUvWxYz0123456789",
    "anthropic": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789_abc",
    "github_pat_classic": "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "github_oauth": "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "github_user": "ghu_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "github_server": "ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "github_refresh": "ghr_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "github_fine_grained": "github_pat_11ABCDEFG0123456789_AbCdEfGhIjKlMnOpQrStUvWxYz",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "slack_bot": "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
    "slack_user": "xoxp-1234567890-AbCdEfGhIjKl",
    "google": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
}


@pytest.fixture
def redactor() -> Redactor:
    return Redactor.from_environment(env={})


@pytest.mark.parametrize("shape", sorted(SECRETS_BY_SHAPE))
def test_each_key_shape_is_redacted_and_the_text_around_it_kept(
    redactor: Redactor, shape: str
) -> None:
    secret = SECRETS_BY_SHAPE[shape]
    text = f"calling the API with {secret} now"
    redacted = redactor.redact_text(text)
    assert secret not in redacted
    assert redacted == f"calling the API with {REDACTED} now"
    assert not redactor.is_clean(text)
    assert redactor.is_clean(redacted)


def test_bearer_header_keeps_the_scheme_and_drops_the_token(redactor: Redactor) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N"
    redacted = redactor.redact_text(f"curl -H 'X-Trace: 1' -H 'Bearer {token}' https://api")
    assert token not in redacted
    assert f"Bearer {REDACTED}" in redacted
    assert "X-Trace: 1" in redacted


def test_authorization_headers_are_redacted(redactor: Redactor) -> None:
    for header in ("Authorization: Bearer abc123def456ghi789", "Authorization: Basic dXNlcjpwYXNz"):
        redacted = redactor.redact_text(header)
        assert "abc123def456ghi789" not in redacted and "dXNlcjpwYXNz" not in redacted
        assert redacted.startswith("Authorization:")


def test_pem_private_key_blocks_are_redacted_whole(redactor: Redactor) -> None:
    body = "MIIEowIBAAKCAQEA7bq3n\nQ2xhdWRlIGlzIGdyZWF0\n"
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----"
    redacted = redactor.redact_text(f"key file:\n{block}\nthe end")
    assert redacted == f"key file:\n{REDACTED}\nthe end"
    truncated = redactor.redact_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}")
    assert truncated == REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2 user=bob", f"password={REDACTED} user=bob"),
        ("export GITHUB_TOKEN=abc123xyz", f"export GITHUB_TOKEN={REDACTED}"),
        ('{"api_key": "my secret", "n": 1}', f'{{"api_key": "{REDACTED}", "n": 1}}'),
        ("client_secret: 's3cr3t v@lue'", f"client_secret: '{REDACTED}'"),
        ("apiKey=abcdef&x=1", f"apiKey={REDACTED}&x=1"),
        ("SESSION_COOKIE = zzz999", f"SESSION_COOKIE = {REDACTED}"),
        ("https://deploy:pa55word@git.example.com/r", f"https://{REDACTED}@git.example.com/r"),
    ],
)
def test_secret_assignments_are_redacted(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "gen_ai.usage.input_tokens: 1200, output_tokens=300",
        "author: Alice, keywords: fast",
        "we send a bearer token in the header",
        "risk-assessment-for-the-whole-project and task-0123456789abcdef",
        "if token == expected: return",
        "sk-learn is not a key; neither is AKIA123",
        "the tokenizer splits words; max_tokens=4096",
    ],
)
def test_ordinary_text_is_left_alone(redactor: Redactor, text: str) -> None:
    assert redactor.redact_text(text) == text
    assert redactor.is_clean(text)


def test_planted_environment_canaries_are_redacted() -> None:
    env = {
        "OPENAI_API_KEY": "canary-openai-0a1b2c3d",
        "MY_SERVICE_PASSWORD": "canary-password-9z8y",
        "aws_secret_access_key": "canary/aws+secret/77",
        "SHORT_TOKEN": "abc",  # too short to redact safely
        "HOME": "/home/canary-not-secret",  # not a secret-looking name
    }
    redactor = Redactor.from_environment(env)
    text = " | ".join(env.values())
    redacted = redactor.redact_text(text)
    assert "canary-openai-0a1b2c3d" not in redacted
    assert "canary-password-9z8y" not in redacted
    assert "canary/aws+secret/77" not in redacted
    assert "abc" in redacted
    assert "/home/canary-not-secret" in redacted


def test_from_environment_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIGENTFLOW_TEST_CANARY_TOKEN", "process-env-canary-4242")
    redacted = Redactor.from_environment().redact_text("value process-env-canary-4242 here")
    assert redacted == f"value {REDACTED} here"


def test_extra_values_and_patterns() -> None:
    redactor = Redactor.from_environment(
        env={}, extra_values=["internal-db-pass"], extra_patterns=[r"TICKET-\d{6}"]
    )
    redacted = redactor.redact_text("use internal-db-pass for TICKET-123456 and TICKET-12")
    assert redacted == f"use {REDACTED} for {REDACTED} and TICKET-12"


def test_an_invalid_extra_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"TICKET-\("):
        Redactor.from_environment(env={}, extra_patterns=[r"TICKET-("])


def test_longer_known_values_are_replaced_first() -> None:
    redactor = Redactor.from_environment(
        env={"API_KEY": "abcdefgh", "OTHER_SECRET": "abcdefgh-and-more"}
    )
    assert redactor.redact_text("x abcdefgh-and-more y") == f"x {REDACTED} y"
    assert redactor.redact_text("x abcdefgh y") == f"x {REDACTED} y"


def test_redact_recurses_into_nested_data_and_secret_keys() -> None:
    redactor = Redactor.from_environment(env={"DB_PASSWORD": "nested-canary-5150"})
    data = {
        "prompt": "connect with nested-canary-5150",
        "api_key": "anything at all",
        "credentials": {"user": "bob", "pin": 1234},
        "password": 1234,
        "gen_ai.usage.input_tokens": 1200,
        "aigentflow.cost_usd": 0.25,
        "session_active": True,
        "messages": [{"role": "user", "content": "token sk-AbCdEfGhIjKlMnOpQrStUvWx01"}],
        "pair": ("AKIAIOSFODNN7EXAMPLE", 7),
        "nothing": None,
    }
    redacted = redactor.redact(data)
    assert redacted == {
        "prompt": f"connect with {REDACTED}",
        "api_key": REDACTED,
        "credentials": REDACTED,
        "password": REDACTED,
        "gen_ai.usage.input_tokens": 1200,
        "aigentflow.cost_usd": 0.25,
        "session_active": True,
        "messages": [{"role": "user", "content": f"token {REDACTED}"}],
        "pair": (REDACTED, 7),
        "nothing": None,
    }
    assert data["api_key"] == "anything at all"  # the input is not modified


def test_secret_names() -> None:
    for name in ("OPENAI_API_KEY", "github_token", "Authorization", "x-api-key", "PGPASSWORD",
                 "session_id", "HTTP_COOKIE", "GOOGLE_APPLICATION_CREDENTIALS", "apiKey"):
        assert looks_secret_name(name), name
    for name in ("gen_ai.usage.input_tokens", "max_tokens", "author", "GIT_AUTHOR_NAME",
                 "keywords", "PATH", "model", "token_count"):
        assert not looks_secret_name(name), name


def test_redactor_survives_pickling() -> None:
    redactor = Redactor.from_environment(env={"SERVICE_TOKEN": "pickled-canary-77"})
    clone = pickle.loads(pickle.dumps(redactor))
    text = "pickled-canary-77 and ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    assert clone.redact_text(text) == f"{REDACTED} and {REDACTED}"


def test_long_text_is_redacted_too(redactor: Redactor) -> None:
    secret = SECRETS_BY_SHAPE["anthropic"]
    text = "lorem ipsum " * 500 + secret + " dolor" * 100
    redacted = redactor.redact_text(text)
    assert secret not in redacted and redacted.count(REDACTED) == 1


def test_importing_redact_loads_only_the_standard_library() -> None:
    heavy = ("duckdb", "pydantic", "ray", "litellm", "rich")
    code = f"import sys, aigentflow.redact; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
