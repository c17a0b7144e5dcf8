"""Claims across runs: one delivery creates a thing that several runs share, whoever comes first.

Owns the Lease protocol; not what is shared (a rollup check run, one pull-request comment: the
integrations), nor how the service finds it again. A shared thing has a key (e.g. the commit,
the rollup's name); its claim is a ``coordination.k8s.io/v1`` Lease named from that key, in the
runs' namespace (its requests are made outside the deadline's scope: the Kubernetes client's
pool is shared, and it keeps its own timeouts):

- The first delivery creates the Lease, holding it (``holderIdentity``, ``renewTime``,
  ``leaseDurationSeconds``), and is the one that may create the thing. The Lease is owned
  (``ownerReferences``) by the run whose delivery created it, so pruning that run collects it.
- Once the thing exists, its id is recorded on the Lease (annotation ``SHARED_ID``): later
  deliveries use that thing instead of creating one. The id is a hint: whoever may edit the
  namespace may edit it, so it is checked with the service before use.
- A delivery that finds a fresh holder with no id recorded yet asks to be tried again shortly
  (``TemporaryError`` with a short ``retry_after``); after the Lease's duration, which outlasts the
  holder's whole deadline, it takes the Lease over with a conditional write.
- Before anyone creates the thing, it looks it up at the service by its deterministic key
  (``external_id``, a hidden marker): a crash between the service's answer and the recorded id,
  a Lease collected with its run, or a takeover never creates a second one.

``find_or_create`` runs that protocol around an integration's own ``find`` and ``create``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from common import deadline
from common.config import DOMAIN
from common.errors import ConflictError, RunNotFoundError, TemporaryError, clip
from common.events import Run
from common.runclient import ClusterAccess

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"
LEASES = "leases"
SHARED_ID = f"{DOMAIN}/shared-id"
"""Annotation on the Lease: the shared thing's id at the service, once it exists (a hint)."""
SHARED_KEY = f"{DOMAIN}/shared-key"
"""Annotation on the Lease: the key it claims, for people reading it (the name is its hash)."""
LEASE_MARGIN_SECONDS = 15
"""How much longer than the holder's deadline a Lease protects its creation: a request sent just
before a deadline may still be carried out by the service after the holder has given up."""
BUSY_RETRY_SECONDS = 5.0
"""Longest wait asked of a delivery that finds the creation in hand."""
MAX_CREATE_ATTEMPTS = 3
"""A Lease collected between a refused create and the read that follows is created again."""

Thing = TypeVar("Thing")


def lease_name(integration: str, key: str) -> str:
    """``ti-<integration>-<32 hex digits of the key's SHA-256>``: a valid, deterministic name."""
    return f"ti-{integration}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def lease_seconds(deadline_seconds: float) -> int:
    """The Lease's duration for a holder whose calls end within ``deadline_seconds``."""
    return math.ceil(deadline_seconds) + LEASE_MARGIN_SECONDS


def new_holder(run: Run) -> str:
    """A holder identity unique to one delivery: duplicates of an event never share a claim."""
    return f"{run.name}/{secrets.token_hex(6)}"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True)
class SharedClaim:
    """The Lease as one delivery read or wrote it: who holds it, until when, and the recorded id."""

    cluster: ClusterAccess = field(repr=False)
    namespace: str
    name: str
    holder: str
    """This delivery's identity."""
    held_by: str
    """The Lease's ``holderIdentity``."""
    shared_id: str | None
    """The shared thing's id, once its creator recorded it. Untrusted: check it with the service."""
    expires: datetime | None
    """When the holder's claim lapses (``renewTime`` + ``leaseDurationSeconds``); ``None``: lapsed."""
    resource_version: str
    transitions: int
    duration: int

    @classmethod
    def of(cls, cluster: ClusterAccess, lease: Mapping[str, Any], holder: str) -> SharedClaim:
        metadata = lease.get("metadata") or {}
        spec = lease.get("spec") or {}
        recorded = (metadata.get("annotations") or {}).get(SHARED_ID)
        renewed = _parse_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        duration = duration if isinstance(duration, int) and duration > 0 else 0
        transitions = spec.get("leaseTransitions")
        return cls(
            cluster=cluster,
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            holder=holder,
            held_by=str(spec.get("holderIdentity") or ""),
            shared_id=recorded if isinstance(recorded, str) and recorded else None,
            expires=renewed + timedelta(seconds=duration) if renewed and duration else None,
            resource_version=str(metadata.get("resourceVersion") or ""),
            transitions=transitions if isinstance(transitions, int) else 0,
            duration=duration,
        )

    @property
    def mine(self) -> bool:
        """This delivery holds the Lease: it may create the shared thing."""
        return self.held_by == self.holder

    def lapsed(self, at: datetime) -> bool:
        return self.expires is None or self.expires <= at

    def record(self, shared_id: str) -> None:
        """Record the shared thing's id on the Lease, if it still is as read. Best effort: anyone
        who misses it finds the thing at the service by its key."""
        patch = {
            "metadata": {"resourceVersion": self.resource_version, "annotations": {SHARED_ID: shared_id}}
        }
        try:
            with deadline.suspended():
                self.cluster.patch_object(LEASE_API, LEASES, self.namespace, self.name, patch)
        except (ConflictError, RunNotFoundError, TemporaryError) as e:
            log.info("Lease %s/%s: id %s not recorded (%s)", self.namespace, self.name, shared_id, e)

    def take_over(self, at: datetime, what: str) -> SharedClaim:
        """Hold the Lease from now on, if nobody changed it since it was read."""
        now = _micro_time(at)
        patch = {
            "metadata": {"resourceVersion": self.resource_version},
            "spec": {
                "holderIdentity": self.holder,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": self.transitions + 1,
            },
        }
        try:
            with deadline.suspended():
                taken = self.cluster.patch_object(LEASE_API, LEASES, self.namespace, self.name, patch)
        except (ConflictError, RunNotFoundError) as e:
            raise _busy(what, BUSY_RETRY_SECONDS) from e
        return SharedClaim.of(self.cluster, taken, self.holder)


def claim_shared(
    cluster: ClusterAccess,
    namespace: str,
    key: str,
    holder: str,
    *,
    integration: str,
    owner: Run,
    duration: int,
    at: datetime,
) -> SharedClaim:
    """The Lease for ``key``: created (and held) by this delivery, or as another one left it."""
    name = lease_name(integration, key)
    now = _micro_time(at)
    body = {
        "apiVersion": LEASE_API,
        "kind": "Lease",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "tekton-integrations"},
            "annotations": {SHARED_KEY: clip(key, 1000)},
            "ownerReferences": [
                {"apiVersion": "tekton.dev/v1", "kind": owner.kind, "name": owner.name, "uid": owner.uid}
            ],
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        },
    }
    with deadline.suspended():  # the Kubernetes client's pool is shared: it keeps its own timeouts
        for _ in range(MAX_CREATE_ATTEMPTS):
            try:
                created = cluster.create_object(LEASE_API, LEASES, namespace, body)
            except ConflictError:
                existing = cluster.get_object(LEASE_API, LEASES, namespace, name)
                if existing is not None:
                    return SharedClaim.of(cluster, existing, holder)
            else:
                return SharedClaim.of(cluster, created, holder)
    raise _busy(f"the claim {name}", BUSY_RETRY_SECONDS)


def find_or_create(
    claim: SharedClaim,
    *,
    find: Callable[[str | None], Thing | None],
    create: Callable[[], Thing],
    id_of: Callable[[Thing], str],
    what: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Thing, bool]:
    """The shared thing, and whether this delivery created it.

    ``find(hint)`` returns the thing if the service has it: the one ``hint`` (the recorded id,
    or ``None``) names once checked, else the one its deterministic key finds. ``create`` makes it;
    only the Lease's holder calls it, and only after ``find`` found nothing.
    """
    looked = clock()
    found = find(claim.shared_id)
    if found is not None:
        if claim.shared_id != id_of(found):
            claim.record(id_of(found))  # created by a holder that did not get to record it
        return found, False
    if not claim.mine:
        if not claim.lapsed(looked):
            assert claim.expires is not None
            wait = (claim.expires - looked).total_seconds()
            raise _busy(what, max(1.0, min(BUSY_RETRY_SECONDS, wait)))
        # The holder's deadline ended before ``find`` looked: had it created the thing, it was found.
        claim = claim.take_over(clock(), what)
    created = create()
    claim.record(id_of(created))
    return created, True


def _busy(what: str, retry_after: float) -> TemporaryError:
    return TemporaryError("Busy", f"another delivery is creating {what}: trying again shortly", retry_after)
