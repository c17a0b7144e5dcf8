"""``tekton-integrations doctor``: is the installation on the current context complete and no wider
than it should be? Each check says what it found and, when something is wrong, the fix.

What is checked is derived, never listed by hand: the integrations from ``common.registry``, and
what each needs from ``common.manifests`` (its Service, its Trigger on the Broker, its
ServiceAccount bound to the shared ClusterRole by its ClusterRoleBinding, and its Secret when its
settings hold credentials), plus the runtime's dead-letter receiver. Then Tekton's
``config-events`` must point at the Broker, and the policy file must parse with every section
valid for its integration's rule (``Policy.check``).

Reads only (``get``/``list``). A Secret is read for its keys; its values never leave
``common.kube``. A check the user may not make is reported as unchecked (exit code 6 when
nothing failed).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from common import manifests, registry
from common.cli.errors import ExitCode
from common.cli.explain import POLICY_KEY, POLICY_LABEL
from common.cli.options import Takes, add_to
from common.cli.output import dump
from common.cli.session import Cluster, Session
from common.errors import IntegrationError
from common.integration import Integration
from common.policy import PolicyError, parse_policy

TEKTON_NAMESPACE = "tekton-pipelines"
CONFIG_EVENTS = "config-events"
BROKER_INGRESS = "http://broker-ingress.knative-eventing.svc.cluster.local"
"""Knative's default MTChannelBasedBroker ingress: a Broker's address before its status says."""
SERVING, EVENTING, RBAC = "serving.knative.dev/v1", "eventing.knative.dev/v1", "rbac.authorization.k8s.io/v1"
RUN_RULES = frozenset(
    {
        *(
            (group, resource, verb)
            for group in ["tekton.dev"]
            for resource in ["pipelineruns", "taskruns"]
            for verb in ["get", "list", "watch", "patch"]
        ),
        *((group, "events", verb) for group in ["", "events.k8s.io"] for verb in ["create", "patch"]),
    }
)
"""(API group, resource, verb) that the shared ClusterRole grants, exactly: knative/rbac/clusterrole.yaml
(a test keeps the two equal)."""
SERVICE_ACCOUNT_GROUPS = ("system:serviceaccounts", "system:authenticated")
"""Groups every ServiceAccount of the namespace belongs to (with ``system:serviceaccounts:<ns>``)."""
Status = Literal["ok", "warning", "failed", "unchecked"]
MARKS: dict[str, tuple[str, str | None]] = {
    "ok": ("✓", "green"),
    "warning": ("!", "yellow"),
    "failed": ("✗", "red"),
    "unchecked": ("?", "yellow"),
}
TAKES = Takes(cluster=True, outputs=("text", "json", "yaml"))
DESCRIPTION = """\
Check the installation on the current context, and say how to fix what is wrong:

  - the Broker exists, and Tekton's config-events ConfigMap points its sink at it;
  - each integration has its Knative Service and its Trigger, and the dead-letter receiver its
    Service;
  - each function's ServiceAccount has exactly its RBAC: its ClusterRoleBinding to the shared
    ClusterRole tekton-integrations-runs, which grants no more than it should, and no other
    binding (a binding to a wider role is a problem);
  - the Secret of each integration that needs credentials exists;
  - the policy file parses, and each section is valid for its integration.

What is checked comes from the installed integrations, never from a list. doctor only reads;
it needs get and list on those objects (cluster-wide for the RBAC bindings).

Examples:
  tekton-integrations doctor
  tekton-integrations doctor --context prod -o json

Exit code 0 when every check passed (warnings allowed), 1 when one failed, 6 when nothing failed
but some could not be checked for lack of permission.
"""


@dataclass(frozen=True)
class Check:
    """One finding: where it belongs, what was looked at, the verdict, and the fix if any."""

    section: str
    subject: str
    status: Status
    message: str
    fix: str | None = None


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the installation on the current context, with fixes",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_to(parser, TAKES)
    parser.add_argument(
        "--integrations-namespace",
        default=manifests.NAMESPACE,
        metavar="NAMESPACE",
        help=f"where the functions run (default {manifests.NAMESPACE})",
    )
    parser.add_argument(
        "--tekton-namespace",
        default=TEKTON_NAMESPACE,
        metavar="NAMESPACE",
        help=f"where Tekton Pipelines keeps config-events (default {TEKTON_NAMESPACE})",
    )
    parser.add_argument("--policy", metavar="FILE", help="check this policy file instead of the deployed one")
    parser.set_defaults(run=run, takes_session=True)


def run(session: Session) -> int:
    args = session.args
    checks = Doctor(session.cluster, args.integrations_namespace, args.tekton_namespace, args.policy).run()
    if args.output == "text":
        session.print(_text(session, checks))
    else:
        failed = [c for c in checks if c.status == "failed"]
        session.print(dump({"ok": not failed, "checks": [asdict(c) for c in checks]}, args.output))
    if any(c.status == "failed" for c in checks):
        return ExitCode.ERROR
    if any(c.status == "unchecked" for c in checks):
        return ExitCode.FORBIDDEN
    return ExitCode.OK


class _ForbiddenError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Doctor:
    """The checks, in the order they are printed."""

    def __init__(
        self, cluster: Cluster, namespace: str, tekton_namespace: str, policy_file: str | None
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.tekton_namespace = tekton_namespace
        self.policy_file = policy_file
        self.checks: list[Check] = []
        self.apply_fix = f"apply the installation: kubectl apply -k knative/ (namespace {namespace})"

    def run(self) -> list[Check]:
        declared = [registry.load(name) for name in registry.names()]
        self._guard("installation", f"Namespace {self.namespace}", self._namespace)
        broker_url = self._guard("eventing", f"Broker {_broker_name()}", self._broker)
        self._guard(
            "eventing",
            f"ConfigMap {self.tekton_namespace}/{CONFIG_EVENTS}",
            lambda: self._config_events(broker_url if isinstance(broker_url, str) else None),
        )
        for role in manifests.ROLE_RULES:
            self._guard("rbac", f"ClusterRole {role}", functools.partial(self._cluster_role, role))
        bindings = self._guard("rbac", "bindings", self._bindings)
        for loaded in declared:
            if loaded.integration is None:
                self.checks.append(
                    Check(
                        loaded.name,
                        f"integration {loaded.name}",
                        "warning",
                        loaded.problem or "does not load",
                    )
                )
                continue
            self._function(loaded.name, loaded.integration, bindings if isinstance(bindings, list) else None)
        self._function(manifests.DEAD_LETTER_SERVICE, None, bindings if isinstance(bindings, list) else None)
        self._guard(
            "installation",
            "other Services",
            lambda: self._strays([*registry.names(), manifests.DEAD_LETTER_SERVICE]),
        )
        self._guard(
            "policy", "policy", lambda: self._policy([lo.integration for lo in declared if lo.integration])
        )
        return self.checks

    # -- plumbing

    def _guard(self, section: str, subject: str, check: Callable[[], Any]) -> Any:
        """Run ``check``; a refused read becomes an unchecked finding instead of an exit."""
        try:
            return check()
        except _ForbiddenError as e:
            self.checks.append(Check(section, subject, "unchecked", f"cannot check: {e.message}"))
        return None

    def _add(self, section: str, subject: str, status: Status, message: str, fix: str | None = None) -> None:
        self.checks.append(Check(section, subject, status, message, fix))

    def _get(
        self, api_version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return self.cluster.get_object(api_version, resource, namespace, name)
        except IntegrationError as e:
            if e.reason == "KubernetesForbidden":
                raise _ForbiddenError(e.message) from e
            raise

    def _list(self, api_version: str, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        try:
            return self.cluster.list_objects(api_version, resource, namespace)
        except IntegrationError as e:
            if e.reason == "KubernetesForbidden":
                raise _ForbiddenError(e.message) from e
            raise

    # -- the checks

    def _namespace(self) -> None:
        subject = f"Namespace {self.namespace}"
        if self._get("v1", "namespaces", None, self.namespace) is None:
            self._add("installation", subject, "failed", "does not exist", self.apply_fix)
        else:
            self._add("installation", subject, "ok", "exists")

    def _broker(self) -> str | None:
        name = _broker_name()
        subject = f"Broker {name}"
        broker = self._get(EVENTING, "brokers", self.namespace, name)
        if broker is None:
            self._add(
                "eventing", subject, "failed", "does not exist: Tekton's events go nowhere", self.apply_fix
            )
            return None
        url = str(((broker.get("status") or {}).get("address") or {}).get("url") or "")
        ready = _ready(broker)
        if ready is not None and ready[0] == "False":
            self._add(
                "eventing",
                subject,
                "failed",
                f"not ready: {ready[1]}",
                "check Knative Eventing's controller and the Broker's class",
            )
        else:
            self._add(
                "eventing",
                subject,
                "ok",
                f"exists, address {url}" if url else "exists (no address reported yet)",
            )
        return url or f"{BROKER_INGRESS}/{self.namespace}/{name}"

    def _config_events(self, broker_url: str | None) -> None:
        subject = f"ConfigMap {self.tekton_namespace}/{CONFIG_EVENTS}"
        expected = broker_url or f"{BROKER_INGRESS}/{self.namespace}/{_broker_name()}"
        patch = (
            f"kubectl patch configmap {CONFIG_EVENTS} -n {self.tekton_namespace} --type merge "
            f'-p \'{{"data":{{"sink":"{expected}","formats":"tektonv1"}}}}\' '
            "(knative/tekton/config-events.yaml)"
        )
        found = self._get("v1", "configmaps", self.tekton_namespace, CONFIG_EVENTS)
        if found is None:
            self._add(
                "eventing",
                subject,
                "failed",
                f"does not exist: is Tekton Pipelines installed in namespace {self.tekton_namespace}?",
                f"install Tekton Pipelines (or pass --tekton-namespace), then {patch}",
            )
            return
        data = found.get("data") or {}
        sink = str(data.get("sink") or "").strip()
        if not sink:
            self._add("eventing", subject, "failed", "sets no sink: Tekton sends no CloudEvents", patch)
        elif sink.rstrip("/") != expected.rstrip("/"):
            self._add("eventing", subject, "failed", f"sink is {sink}, not the Broker ({expected})", patch)
        elif str(data.get("formats") or "tektonv1").strip() != "tektonv1":
            self._add(
                "eventing",
                subject,
                "warning",
                f"formats is {data.get('formats')!r}; only tektonv1 is valid",
                patch,
            )
        else:
            self._add("eventing", subject, "ok", "sink points at the Broker")

    def _cluster_role(self, name: str) -> None:
        subject = f"ClusterRole {name}"
        expected = (
            RUN_RULES if name == manifests.CLUSTER_ROLE else frozenset(_rules(manifests.ROLE_RULES[name]))
        )
        role = self._get(RBAC, "clusterroles", None, name)
        if role is None:
            self._add(
                "rbac",
                subject,
                "failed",
                "does not exist: the functions can neither read nor record runs",
                self.apply_fix,
            )
            return
        granted = _rules(role.get("rules") or [])
        wider = sorted(granted - expected)
        missing = sorted(expected - granted)
        if wider:
            self._add(
                "rbac",
                subject,
                "failed",
                f"grants more than the functions need: {_triples(wider)}",
                "restore it: kubectl apply -k knative/rbac/ (or kubectl apply -k knative/)",
            )
        elif missing:
            self._add(
                "rbac",
                subject,
                "failed",
                f"lacks {_triples(missing)}",
                "restore it: kubectl apply -k knative/",
            )
        else:
            self._add("rbac", subject, "ok", "grants exactly what the functions need")

    def _bindings(self) -> list[dict[str, Any]]:
        found = [{**b, "kind": "ClusterRoleBinding"} for b in self._list(RBAC, "clusterrolebindings")]
        found += [{**b, "kind": "RoleBinding"} for b in self._list(RBAC, "rolebindings")]
        return found

    def _function(
        self, name: str, integration: Integration[Any, Any] | None, bindings: list[dict[str, Any]] | None
    ) -> None:
        self._guard(name, f"Service {name}", lambda: self._service(name))
        if integration is not None:
            self._guard(name, f"Trigger {name}", lambda: self._trigger(name))
        self._guard(name, f"ServiceAccount {name}", lambda: self._service_account(name, bindings))
        if integration is not None and manifests.secret_template(integration) is not None:
            self._guard(name, f"Secret {manifests.secret_name(name)}", lambda: self._secret(integration))

    def _missing_fix(self, name: str) -> str:
        if name == manifests.DEAD_LETTER_SERVICE:
            return self.apply_fix
        return (
            f"{self.apply_fix}; if knative/integrations/{name}/ is missing, generate it first: "
            "tekton-integrations manifests --write knative/integrations"
        )

    def _service(self, name: str) -> None:
        subject = f"Service {name}"
        found = self._get(SERVING, "services", self.namespace, name)
        if found is None:
            self._add(
                name, subject, "failed", "does not exist: its events are not handled", self._missing_fix(name)
            )
            return
        account = (((found.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "serviceAccountName"
        )
        ready = _ready(found)
        if account != name:
            self._add(
                name,
                subject,
                "failed",
                f"runs as ServiceAccount {account or 'default'}, not {name}",
                self.apply_fix,
            )
        elif ready is not None and ready[0] == "False":
            self._add(
                name,
                subject,
                "failed",
                f"not ready: {ready[1]}",
                f"kubectl describe ksvc {name} -n {self.namespace}",
            )
        else:
            self._add(
                name, subject, "ok", "exists" + ("" if ready else " (no status from Knative Serving yet)")
            )

    def _trigger(self, name: str) -> None:
        subject = f"Trigger {name}"
        expected = manifests.trigger(name)["spec"]
        found = self._get(EVENTING, "triggers", self.namespace, name)
        if found is None:
            self._add(
                name,
                subject,
                "failed",
                "does not exist: the Broker does not deliver to the function",
                self.apply_fix,
            )
            return
        spec = found.get("spec") or {}
        subscriber = ((spec.get("subscriber") or {}).get("ref") or {}).get("name")
        if spec.get("broker") != expected["broker"] or subscriber != name:
            self._add(
                name,
                subject,
                "failed",
                f"delivers from Broker {spec.get('broker')} to {subscriber}, "
                f"not from {expected['broker']} to Service {name}",
                self.apply_fix,
            )
        elif not ((spec.get("delivery") or {}).get("deadLetterSink")):
            self._add(
                name,
                subject,
                "warning",
                "has no dead-letter sink: events that fail every retry are lost silently",
                self.apply_fix,
            )
        else:
            self._add(name, subject, "ok", f"Broker {spec.get('broker')} delivers to Service {name}")

    def _service_account(self, name: str, bindings: list[dict[str, Any]] | None) -> None:
        subject = f"ServiceAccount {name}"
        if self._get("v1", "serviceaccounts", self.namespace, name) is None:
            self._add(
                name, subject, "failed", "does not exist: the function cannot start", self._missing_fix(name)
            )
            return
        if bindings is None:
            self._add(name, subject, "unchecked", "exists; its bindings could not be listed")
            return
        expected = {
            obj["metadata"]["name"]: obj["roleRef"]["name"]
            for obj in manifests.rbac(name)
            if obj["kind"] == "ClusterRoleBinding"
        }
        account = f"system:serviceaccount:{self.namespace}:{name}"
        own, extra = {}, []
        for binding in bindings:
            if not _binds(binding, self.namespace, name):
                continue
            meta = binding.get("metadata") or {}
            role = binding.get("roleRef") or {}
            if binding["kind"] == "ClusterRoleBinding" and meta.get("name") in expected:
                own[meta["name"]] = role.get("name")
            else:
                extra.append(binding)
        problems, fixes = [], []
        for binding_name, role in expected.items():
            if own.get(binding_name) != role:
                problems.append(f"ClusterRoleBinding {binding_name} to ClusterRole {role} is missing")
                fixes.append(self.apply_fix)
        for binding in extra:
            meta, role = binding.get("metadata") or {}, binding.get("roleRef") or {}
            where = f" in namespace {meta.get('namespace')}" if binding["kind"] == "RoleBinding" else ""
            problems.append(
                f"{binding['kind']} {meta.get('name')}{where} also grants "
                f"{role.get('kind')} {role.get('name')}: more than the function needs"
            )
            delete = f"kubectl delete {binding['kind'].lower()} {meta.get('name')}" + (
                f" -n {meta.get('namespace')}" if where else ""
            )
            fixes.append(f"remove {account} from its subjects, or {delete}")
        if problems:
            self._add(
                name, f"RBAC of {subject}", "failed", "; ".join(problems), "; ".join(dict.fromkeys(fixes))
            )
        else:
            roles = ", ".join(sorted(set(expected.values())))
            self._add(name, subject, "ok", f"bound only to ClusterRole {roles}")

    def _secret(self, integration: Integration[Any, Any]) -> None:
        name = integration.name
        secret = manifests.secret_name(name)
        subject = f"Secret {secret}"
        settings = integration.settings
        keys = [manifests.secret_key(f) for f in manifests.secret_fields(settings)]
        directory = bool(manifests.directory_fields(settings))
        found = self._get("v1", "secrets", self.namespace, secret)
        example = f"knative/integrations/{registry.folder_of(name)}/secret.example.yaml"
        if found is None:
            what = "one key per namespace, or default" if directory else f"one of the keys {', '.join(keys)}"
            first = "default" if directory else (keys[0] if keys else "KEY")
            self._add(
                name,
                subject,
                "failed",
                f"does not exist: {name} has no credentials and records every run as "
                f"{settings.service}NotConfigured",
                f"kubectl -n {self.namespace} create secret generic {secret} --from-file={first}=./FILE "
                f"({what}; see {example})",
            )
            return
        present = sorted((found.get("data") or {}).keys())
        if not directory and not set(present) & set(keys):
            self._add(
                name,
                subject,
                "warning",
                f"holds {', '.join(present) or 'no keys'}, none of which {name} reads ({', '.join(keys)})",
                f"see {example}",
            )
        else:
            self._add(name, subject, "ok", f"exists with {len(present)} key(s): {', '.join(present)}")

    def _strays(self, names: list[str]) -> None:
        """Services labelled as ours that no installed integration declares (left over after removal)."""
        label = manifests.labels("x")["app.kubernetes.io/name"]
        for service in self._list(SERVING, "services", self.namespace):
            meta = service.get("metadata") or {}
            if (meta.get("labels") or {}).get("app.kubernetes.io/name") == label and meta.get(
                "name"
            ) not in names:
                self._add(
                    "installation",
                    f"Service {meta.get('name')}",
                    "warning",
                    "is labelled as part of tekton-integrations but no installed integration declares it",
                    "remove it if the integration was uninstalled: "
                    f"kubectl delete ksvc {meta.get('name')} -n {self.namespace}",
                )

    def _policy(self, declared: list[Integration[Any, Any]]) -> None:
        if self.policy_file:
            subject = f"policy file {self.policy_file}"
            try:
                with open(self.policy_file, encoding="utf-8") as f:
                    text: str | None = f.read()
            except OSError as e:
                self._add("policy", subject, "failed", f"cannot be read: {e.strerror}")
                return
        else:
            subject = f"policy ConfigMap in {self.namespace}"
            try:
                text = self.cluster.read_config_map(self.namespace, POLICY_LABEL, POLICY_KEY)
            except IntegrationError as e:
                if e.reason == "KubernetesForbidden":
                    raise _ForbiddenError(e.message) from e
                raise
            if text is None:
                self._add(
                    "policy",
                    subject,
                    "warning",
                    "none found: every namespace may target every destination",
                    "apply knative/ (it generates the ConfigMap from knative/config/policy.yaml)",
                )
                return
        try:
            policy = parse_policy(text or "", self.policy_file or f"{subject} ({POLICY_KEY})")
            problems = []
            for integration in declared:
                try:
                    policy.check(integration.name, integration.policy)
                except PolicyError as e:
                    problems.append(e.message)
        except PolicyError as e:
            problems = [e.message]
        if problems:
            self._add(
                "policy",
                subject,
                "failed",
                "; ".join(problems) + ": the functions send nothing until it is fixed",
                "correct knative/config/policy.yaml (docs/policy.md) and apply it",
            )
        else:
            self._add("policy", subject, "ok", "parses, and every section is valid for its integration")


def _broker_name() -> str:
    return str(manifests.trigger("x")["spec"]["broker"])


def _ready(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The ``Ready`` condition's status and message, if the controller reported one."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status")), str(
                condition.get("message") or condition.get("reason") or ""
            )
    return None


def _rules(rules: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) granted; a ``*`` stays ``*`` (wider than anything expected)."""
    granted = set()
    for rule in rules:
        if rule.get("nonResourceURLs"):
            granted |= {
                ("", f"nonResourceURL {url}", verb)
                for url in rule["nonResourceURLs"]
                for verb in rule.get("verbs") or []
            }
            continue
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    granted.add((group, resource, verb))
    return granted


def _triples(found: list[tuple[str, str, str]]) -> str:
    return ", ".join(f"{verb} {resource}" + (f".{group}" if group else "") for group, resource, verb in found)


def _binds(binding: dict[str, Any], namespace: str, name: str) -> bool:
    """Whether the binding's subjects include the ServiceAccount, directly or through a group all
    ServiceAccounts belong to (Kubernetes' own ``system:`` bindings excepted)."""
    groups = {*SERVICE_ACCOUNT_GROUPS, f"system:serviceaccounts:{namespace}"}
    own_name = str((binding.get("metadata") or {}).get("name") or "")
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind")
        if (
            kind == "ServiceAccount"
            and subject.get("name") == name
            and subject.get("namespace", namespace) == namespace
        ):
            return True
        if kind == "User" and subject.get("name") == f"system:serviceaccount:{namespace}:{name}":
            return True
        if kind == "Group" and subject.get("name") in groups and not own_name.startswith("system:"):
            return True
    return False


def _text(session: Session, checks: list[Check]) -> str:
    style = session.style
    lines: list[str] = []
    section = None
    for check in checks:
        if check.section != section:
            section = check.section
            lines += ["", style.bold(section)] if lines else [style.bold(section)]
        mark, colour = MARKS[check.status]
        lines.append(f"  {style.paint(mark, colour)} {check.subject}: {check.message}")
        if check.fix:
            lines.append(f"      fix: {check.fix}")
    failed = [c for c in checks if c.status == "failed"]
    unchecked = [c for c in checks if c.status == "unchecked"]
    warnings = [c for c in checks if c.status == "warning"]
    lines.append("")
    if failed:
        lines.append(style.paint(f"{len(failed)} problem(s): ", "red") + "; ".join(c.subject for c in failed))
    elif unchecked:
        lines.append(style.paint(f"{len(unchecked)} check(s) could not be made", "yellow") + " (permission)")
    else:
        lines.append(style.paint("OK", "green") + (f", with {len(warnings)} warning(s)" if warnings else ""))
    return "\n".join(lines)
