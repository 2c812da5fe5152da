"""Sending one alert: a JSON POST (webhook), a Slack-compatible POST (``text`` and ``blocks``), or an email
through SMTP (optionally STARTTLS and a login). Standard library only: urllib and smtplib."""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from aigentflow.incidents.config import Route
from aigentflow.incidents.records import Incident

USER_AGENT = "aigentflow-incidents/1"


class DeliveryFailed(Exception):
    """One attempt failed; the message never quotes the URL's path, a header or a credential."""


def payload(incident: Incident, hint: str) -> dict[str, Any]:
    """What a webhook receives (JSON): the incident, without its timeline."""
    return {"incident": f"INC-{incident.id}", "id": incident.id, "severity": incident.severity,
            "rule": incident.rule, "status": incident.status, "title": incident.title, "tenant": incident.tenant_id,
            "count": incident.count, "first_seen": incident.first_seen, "last_seen": incident.last_seen,
            "facts": incident.facts, "runbook": hint}


def summary(incident: Incident) -> str:
    return f"[{incident.severity}] INC-{incident.id} {incident.rule}: {incident.title}"


def slack_payload(incident: Incident, hint: str) -> dict[str, Any]:
    text = summary(incident)
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in (
        ("Severity", incident.severity), ("Status", incident.status), ("Tenant", incident.tenant_id),
        ("Seen", f"{incident.count}x since {incident.first_seen}"))]
    return {"text": text, "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": f"{incident.severity} INC-{incident.id}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{incident.rule}*: {incident.title}"}},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Runbook: `{hint}`"}]},
    ]}


def where(url: str) -> str:
    """scheme://host:port of a URL: what may be shown of it (its path may be a token, as Slack's are)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def send(route: Route, incident: Incident, hint: str) -> str:
    """One attempt; what the receiver said (``HTTP 200``, ``250 accepted``); raises DeliveryFailed."""
    if route.type == "email":
        return _email(route, incident, hint)
    body = payload(incident, hint) if route.type == "webhook" else slack_payload(incident, hint)
    url = route.target()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    for header, variable in route.headers_env.items():
        if os.environ.get(variable):
            headers[header] = os.environ[variable]
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=route.timeout_s) as response:
            return f"HTTP {response.status} from {where(url)}"
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} from {where(url)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{where(url)} unreachable: {type(reason).__name__}: {reason}") from None


def _email(route: Route, incident: Incident, hint: str) -> str:
    message = EmailMessage()
    message["Subject"] = summary(incident)
    message["From"] = route.from_addr or ""
    message["To"] = ", ".join(route.to)
    facts = "\n".join(f"  {k}: {v}" for k, v in sorted(incident.facts.items()))
    message.set_content(
        f"{summary(incident)}\n\nstatus: {incident.status}\ntenant: {incident.tenant_id}\n"
        f"seen: {incident.count} time(s), first {incident.first_seen}, last {incident.last_seen}\n"
        f"facts:\n{facts}\n\nrunbook: {hint}\n")
    try:
        with smtplib.SMTP(route.host or "", route.port, timeout=route.timeout_s) as smtp:
            if route.starttls:
                smtp.starttls()
            if route.username_env and route.password_env:
                smtp.login(os.environ.get(route.username_env, ""), os.environ.get(route.password_env, ""))
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {route.host}:{route.port}: {type(exc).__name__}: {exc}") from None
    if refused:
        raise DeliveryFailed(f"SMTP {route.host}:{route.port} refused {sorted(refused)}")
    return f"SMTP {route.host}:{route.port} accepted for {len(route.to)} recipient(s)"
