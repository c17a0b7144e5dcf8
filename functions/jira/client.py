"""The Jira client: one site (``JIRA_URL``), one account, bounded requests to its REST API.

Owns the settings (``JiraSettings``), authentication, and the handful of REST calls the jira
function makes; not what they mean (``functions.jira.main`` and its modes decide that).

- **Cloud or Data Center.** ``JIRA_DEPLOYMENT`` says which; unset, a site on ``*.atlassian.net``
  is Cloud and any other host is Data Center. Cloud is spoken to in REST v3 (bodies are
  Atlassian Document Format) and searched through ``/search/jql``; Data Center in REST v2
  (bodies are wiki markup) and searched through ``/search``.
- **Credentials** come from settings only: ``JIRA_USERNAME`` with ``JIRA_API_TOKEN(_FILE)`` (HTTP
  Basic: Cloud's email and API token, or a Data Center user and password), or
  ``JIRA_PERSONAL_ACCESS_TOKEN(_FILE)`` (Data Center, ``Authorization: Bearer``). They are only
  ever sent to ``JIRA_URL``: every path is built here from that base and from values this module
  checks (issue keys, numeric ids), never from a URL a run or Jira supplied, and redirects are not
  followed (a 3xx is an error).
- **Answers.** Anything but a 2xx is raised as ``JiraAnswerError`` with Jira's own words
  (``{"errorMessages": [...], "errors": {...}}``) and the headers; ``functions.jira.errors``
  classifies it. Nothing here retries or sleeps: the sender redelivers.

One ``requests.Session`` per thread (``PerSettings(..., per_thread=True)``): a connection is only
used by the thread that made it (``common.deadline``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr

from common import ServiceSettings
from common.settings import PerSettings
from functions.jira.errors import FAULTS, JiraAnswerError, said

if TYPE_CHECKING:  # requests is imported when the first client is built, for a run that calls Jira
    import requests

Deployment = Literal["cloud", "datacenter"]
CLOUD_SUFFIX = ".atlassian.net"
ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}-[1-9][0-9]{0,17}$")
"""A Jira issue key (``WID-42``): a project key, a dash, the issue's number."""
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")
NUMERIC_ID = re.compile(r"^[1-9][0-9]{0,18}$")
USER_AGENT = "tekton-integrations-jira"


def normalize_site(url: str) -> str:
    """``https://acme.atlassian.net`` or ``https://jira.example.com/jira``: lower-case scheme and
    host, no default port, no trailing slash or ``/rest/api/N``."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise ValueError("must be the site's http(s) base URL, such as https://acme.atlassian.net")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials: set JIRA_USERNAME and JIRA_API_TOKEN_FILE")
    default_port = {"http": 80, "https": 443}[scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    path = re.sub(r"/rest/api/[23]/?$", "", parts.path.rstrip("/")).rstrip("/")
    return f"{scheme}://{host}{port}{path}"


def _deployment(value: object) -> object:
    if isinstance(value, str):
        lowered = value.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
        return {"server": "datacenter", "dc": "datacenter"}.get(lowered, lowered)
    return value


class JiraSettings(ServiceSettings):
    """``JIRA_*``: the site, its deployment, the account's credentials and the deadline."""

    prefix: ClassVar[str] = "JIRA"
    service: ClassVar[str] = "Jira"

    url: Annotated[str, AfterValidator(normalize_site)] | None = None
    """``JIRA_URL``: the site's base URL, e.g. ``https://acme.atlassian.net``."""
    deployment: Annotated[Deployment, BeforeValidator(_deployment)] | None = None
    """``JIRA_DEPLOYMENT``: ``cloud`` or ``datacenter``; unset, taken from ``JIRA_URL``'s host."""
    username: str | None = None
    """``JIRA_USERNAME``: the account's email address (Cloud) or user name (Data Center)."""
    api_token: SecretStr | None = None
    """``JIRA_API_TOKEN(_FILE)``: the account's API token (Cloud) or password (Data Center)."""
    personal_access_token: SecretStr | None = None
    """``JIRA_PERSONAL_ACCESS_TOKEN(_FILE)``: a Data Center personal access token (Bearer)."""

    @property
    def edition(self) -> Deployment:
        """The deployment: as configured, else Cloud for ``*.atlassian.net`` and Data Center otherwise."""
        if self.deployment is not None:
            return self.deployment
        host = (urlsplit(self.url or "").hostname or "").lower()
        return "cloud" if host.endswith(CLOUD_SUFFIX) else "datacenter"

    @property
    def api(self) -> str:
        """The REST API's base: v3 on Cloud (Atlassian Document Format), v2 on Data Center."""
        return f"{self.url}/rest/api/{3 if self.edition == 'cloud' else 2}"

    def authorization(self) -> str | tuple[str, str]:
        """A Bearer token (Data Center's personal access token) or Basic credentials; or
        ``JiraNotConfigured`` naming what is missing."""
        if not self.url:
            raise self.not_configured("the Jira function needs JIRA_URL (the site's base URL)")
        if self.edition == "datacenter" and self.personal_access_token is not None:
            return self.personal_access_token.get_secret_value()
        if self.username and self.api_token is not None:
            return (self.username, self.api_token.get_secret_value())
        if self.edition == "cloud":
            raise self.not_configured(
                "Jira Cloud needs JIRA_USERNAME (the account's email address) and "
                "JIRA_API_TOKEN(_FILE) (an API token of that account); personal access tokens are "
                "Data Center's",
                "api_token",
            )
        raise self.not_configured(
            "the Jira function needs JIRA_PERSONAL_ACCESS_TOKEN(_FILE), or JIRA_USERNAME and "
            "JIRA_API_TOKEN(_FILE)",
            "personal_access_token",
            "api_token",
        )


def issue_path(key: str) -> str:
    """``/issue/WID-42``; refuses anything but an issue key, so no run can steer a path."""
    if not ISSUE_KEY.match(key):
        raise ValueError(f"not an issue key: {key[:40]!r}")
    return f"/issue/{quote(key, safe='')}"


class JiraClient:
    """The REST calls of one site, for one thread; ``me`` is the account's identity, asked once."""

    def __init__(self, settings: JiraSettings) -> None:
        import requests  # noqa: PLC0415 -- only for a run that calls Jira

        credentials = settings.authorization()
        self.settings = settings
        self.edition = settings.edition
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        # Always an auth object, so requests never adds credentials of its own (from ~/.netrc).
        self.session.auth = _Bearer(credentials) if isinstance(credentials, str) else credentials
        self._me: str | None = None

    # -- the calls --------------------------------------------------------------------------------

    def myself(self) -> str:
        """The account's id as Jira names authors: ``accountId`` on Cloud, ``key`` on Data Center."""
        if self._me is None:
            answer = self.call("GET", "/myself", what="read the Jira account (GET myself)")
            self._me = user_id(answer, self.edition)
            if not self._me:
                raise FAULTS.for_status(502, what="read the Jira account", detail="no account id")
        return self._me

    def issue(self, key: str, fields: str) -> dict[str, Any]:
        return _mapping(
            self.call("GET", issue_path(key), what=f"read issue {key}", params={"fields": fields})
        )

    def comment(self, key: str, comment_id: str) -> dict[str, Any] | None:
        """One comment of the issue, or ``None`` when the issue has no comment with that id."""
        if not NUMERIC_ID.match(comment_id):
            return None
        try:
            answer = self.call(
                "GET", f"{issue_path(key)}/comment/{comment_id}", what=f"read comment {comment_id} on {key}"
            )
        except JiraAnswerError as e:
            if e.status in (400, 404):
                return None  # another issue's, deleted, or not a comment at all
            raise
        return _mapping(answer)

    def comments(self, key: str, start: int, page: int) -> tuple[list[dict[str, Any]], bool]:
        """A page of the issue's comments, newest first, and whether more follow."""
        answer = _mapping(
            self.call(
                "GET",
                f"{issue_path(key)}/comment",
                what=f"list the comments on {key}",
                params={"startAt": start, "maxResults": page, "orderBy": "-created"},
            )
        )
        found = [item for item in answer.get("comments") or [] if isinstance(item, Mapping)]
        total = answer.get("total")
        more = bool(found) and isinstance(total, int) and start + len(found) < total
        return [dict(item) for item in found], more

    def add_comment(self, key: str, body: object) -> str:
        answer = self.call(
            "POST", f"{issue_path(key)}/comment", what=f"comment on {key}", json={"body": body}, ok=201
        )
        return _id_of(answer, f"comment on {key}")

    def edit_comment(self, key: str, comment_id: str, body: object) -> None:
        if not NUMERIC_ID.match(comment_id):
            raise ValueError(f"not a comment id: {comment_id[:40]!r}")
        self.call(
            "PUT",
            f"{issue_path(key)}/comment/{comment_id}",
            what=f"edit comment {comment_id} on {key}",
            json={"body": body},
        )

    def search(self, jql: str, fields: list[str], limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` issues ``jql`` finds (one page): ``/search/jql`` on Cloud, ``/search`` on
        Data Center."""
        path = "/search/jql" if self.edition == "cloud" else "/search"
        answer = _mapping(
            self.call(
                "POST",
                path,
                what="search for the pipeline's open issue (JQL)",
                json={"jql": jql, "fields": fields, "maxResults": limit},
            )
        )
        return [dict(item) for item in answer.get("issues") or [] if isinstance(item, Mapping)]

    def create_issue(self, fields: Mapping[str, Any], project: str) -> str:
        answer = _mapping(
            self.call("POST", "/issue", what=f"open an issue in {project}", json={"fields": fields}, ok=201)
        )
        key = answer.get("key")
        if not isinstance(key, str) or not ISSUE_KEY.match(key):
            raise FAULTS.for_status(502, what=f"open an issue in {project}", detail="no issue key")
        return key

    def transitions(self, key: str) -> list[dict[str, Any]]:
        answer = _mapping(
            self.call("GET", f"{issue_path(key)}/transitions", what=f"list the transitions of {key}")
        )
        return [dict(item) for item in answer.get("transitions") or [] if isinstance(item, Mapping)]

    def transition(self, key: str, transition_id: str, name: str) -> None:
        self.call(
            "POST",
            f"{issue_path(key)}/transitions",
            what=f"move {key} with transition {name!r}",
            json={"transition": {"id": transition_id}},
            ok=204,
        )

    # -- the transport ----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        ok: int = 200,
    ) -> Any:
        """One request to ``JIRA_URL``'s REST API; its JSON answer (``None`` for 204).

        Raises ``JiraAnswerError`` for any status but a 2xx, and the fault table's error for a
        request that got no answer or an unreadable one.
        """
        import requests  # noqa: PLC0415 -- loaded already by the session

        try:
            answer = self.session.request(
                method,
                self.settings.api + path,
                params=params,
                json=json,
                timeout=self.settings.timeout_seconds,
                allow_redirects=False,
            )
        except requests.Timeout as e:
            raise FAULTS.timeout(what) from e
        except requests.RequestException as e:
            raise FAULTS.unreachable(what, e) from e
        with answer:
            if not 200 <= answer.status_code < 300:
                detail = "" if answer.is_redirect else said(answer.text)
                raise JiraAnswerError(answer.status_code, dict(answer.headers), detail, what)
            if answer.status_code == 204 or (ok == 204 and not answer.content):
                return None
            try:
                return answer.json()
            except ValueError as e:
                raise FAULTS.for_status(502, what=what, detail="the answer is not JSON") from e


class _Bearer:
    """requests' auth for a personal access token (any callable that edits the request will do)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def user_id(user: object, edition: Deployment) -> str:
    """An author's id as ``myself`` names it: ``accountId`` (Cloud), ``key`` else ``name`` (Data Center)."""
    if not isinstance(user, Mapping):
        return ""
    value = user.get("accountId") if edition == "cloud" else user.get("key") or user.get("name")
    return value if isinstance(value, str) else ""


def _mapping(answer: object) -> dict[str, Any]:
    return dict(answer) if isinstance(answer, Mapping) else {}


def _id_of(answer: object, what: str) -> str:
    value = _mapping(answer).get("id")
    if value is None or not NUMERIC_ID.match(str(value)):
        raise FAULTS.for_status(502, what=what, detail="no comment id in the answer")
    return str(value)


client = PerSettings(JiraClient, per_thread=True)
"""A client per thread (its connection pool is the thread's), rebuilt when the settings change."""
