"""Jira's fault hints, its error bodies, and its one special case: a rate limit that gives only
``X-RateLimit-Reset`` as an ISO 8601 time (Jira Cloud), which the common table reads as epoch
seconds only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from common import Faults
from common.errors import IntegrationError

FAULTS = Faults(
    "Jira",
    {
        400: "Jira refused the request",
        401: "Jira rejected the credentials: check JIRA_USERNAME and JIRA_API_TOKEN(_FILE), or "
        "JIRA_PERSONAL_ACCESS_TOKEN(_FILE), and that the token has not expired or been revoked",
        403: "the Jira account lacks a permission here: it needs Browse projects, Add comments and "
        "Edit own comments; Create issues and Transition issues where issues are opened or moved",
        404: "not found: the issue or project does not exist, or the Jira account cannot see it "
        "(Browse projects permission)",
    },
    reasons={400: "Rejected", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"},
)


class JiraAnswerError(Exception):
    """Jira answered anything but a 2xx to ``what``; ``detail`` is Jira's own words."""

    def __init__(self, status: int, headers: Mapping[str, str], detail: str, what: str) -> None:
        super().__init__(f"Jira answered {status} to {what}")
        self.status = status
        self.headers = headers
        self.detail = detail
        self.what = what


def classify(error: JiraAnswerError) -> IntegrationError:
    """The runtime error for Jira's answer: the common fault table, with Jira's reset time read."""
    headers = {key.lower(): value for key, value in error.headers.items()}
    if error.status == 429 and "retry-after" not in headers:
        wait = _seconds_until(headers.get("x-ratelimit-reset", ""))
        if wait is not None:
            headers["retry-after"] = str(wait)
    return FAULTS.for_status(error.status, headers, what=error.what, detail=error.detail)


def said(text: str) -> str:
    """Jira's words from an error body: ``errorMessages`` and ``errors`` joined, else the text."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if not isinstance(body, Mapping):
        return text
    messages = [str(item) for item in body.get("errorMessages") or [] if item]
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        messages += [f"{field}: {message}" for field, message in errors.items()]
    return "; ".join(messages) or text


def _seconds_until(moment: str) -> int | None:
    """Whole seconds until ``2026-03-14T10:05Z`` (Jira Cloud's ``X-RateLimit-Reset``), at least 1."""
    value = moment.strip()
    if not value or value.isdigit():
        return None  # epoch seconds are the common table's to read
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(1, round((when - datetime.now(UTC)).total_seconds()))
