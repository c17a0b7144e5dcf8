"""Where IntegrationStatus records live on a run (DESIGN.md §2).

The annotation ``<name>.integrations.tekton.dev/status`` is the source of truth: it survives the
CRD's pruning of unknown status fields and Tekton's wholesale status writes. Each write is one
JSON merge patch that names only that key and carries the ``resourceVersion`` the decision was
made on, so a concurrent change answers ``ConflictError`` instead of being overwritten.

Where the cluster keeps ``status.integrations`` (a Tekton that adopted TEP-0004), the record is
mirrored there too (``TI_STATUS_INTEGRATIONS``, see ``MirrorMode``). Whether it is kept is learnt
from what the server answers, never assumed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Literal

from common.config import RECORD_KEY, annotation_key
from common.errors import ConflictError, IntegrationError, RunNotFoundError
from common.events import Run, RunKind, parse_run
from common.runclient import RunClient, RunRef
from common.status import IntegrationStatus

log = logging.getLogger(__name__)

MirrorMode = Literal["auto", "always", "never"]
"""``TI_STATUS_INTEGRATIONS``. ``auto``: mirror on runs the server already stores with a
``status.integrations`` list (the schema keeps it: evidence at no cost), never probing, so an event
costs no request for the mirror on today's Tekton, whose schema prunes the field. ``always``: write
it after every record, until the server's answer shows the field pruned (one more request per
kind and process on a cluster that prunes it). ``never``: the annotation only."""


def ref_of(run: Run) -> RunRef:
    return RunRef(run.kind, run.namespace, run.name)


class StatusStore:
    """Reads and writes one integration's records."""

    def __init__(self, client: RunClient, integration: str, mirror: MirrorMode = "auto") -> None:
        self.client = client
        self.integration = integration
        self.key = annotation_key(integration, RECORD_KEY)
        self._tep_mirror = TepStatusMirror(client, mirror)

    def load(self, ref: RunRef) -> Run:
        """The live run. Raises ``RunNotFoundError`` or a temporary error."""
        return parse_run(ref.kind, self.client.get(ref))

    def read(self, run: Run) -> IntegrationStatus | None:
        """This integration's record for ``run``; a record inherited from a parent run is ignored."""
        value = run.annotations.get(self.key)
        record = IntegrationStatus.from_json(value) if value else None
        if record is None or record.run_uid != run.uid:
            return None
        return record

    def write(self, run: Run, record: IntegrationStatus) -> Run:
        """Store ``record`` if ``run`` is unchanged on the server; return the run as written.

        Raises ``ConflictError`` when the run changed since it was read.
        """
        patch = {
            "metadata": {
                "resourceVersion": run.resource_version,
                "annotations": {self.key: record.to_json()},
            }
        }
        written = parse_run(run.kind, self.client.patch(ref_of(run), patch))
        self._tep_mirror.write(written, record)
        return written

    def withdraw(self, run: Run) -> None:
        """Remove this integration's record from ``run`` if it is unchanged (best effort: a claim
        left behind expires, ``CLAIM_TTL``)."""
        patch = {"metadata": {"resourceVersion": run.resource_version, "annotations": {self.key: None}}}
        try:
            self.client.patch(ref_of(run), patch)
        except (ConflictError, RunNotFoundError, IntegrationError) as e:
            log.warning("could not withdraw the claim on %s: %s", ref_of(run), e)


class TepStatusMirror:
    """Mirrors records into ``status.integrations`` on clusters whose schema keeps that field."""

    def __init__(self, client: RunClient, mode: MirrorMode = "auto") -> None:
        self.client = client
        self.mode = mode
        self._kept: dict[RunKind, bool] = {}
        self._lock = threading.Lock()

    def write(self, run: Run, record: IntegrationStatus) -> None:
        if self.mode == "never" or self._kept.get(run.kind) is False:
            return
        if self.mode == "auto" and not isinstance((run.raw.get("status") or {}).get("integrations"), list):
            return  # no evidence that the schema keeps the field: no request to find out
        entries = [
            entry
            for entry in _integrations(run.raw)
            if not (isinstance(entry, Mapping) and entry.get("name") == record.name)
        ]
        patch = {
            "metadata": {"resourceVersion": run.resource_version},
            "status": {"integrations": [*entries, record.tep_view()]},
        }
        try:
            answer = self.client.patch_status(ref_of(run), patch)
        except (ConflictError, RunNotFoundError):
            return  # best effort: the annotation already holds the record
        except IntegrationError as e:
            self._learn(run.kind, kept=False, why=f"status writes refused ({e.message})")
            return
        kept = any(
            isinstance(entry, Mapping) and entry.get("name") == record.name for entry in _integrations(answer)
        )
        self._learn(run.kind, kept=kept, why="the server's schema prunes status.integrations")

    def _learn(self, kind: RunKind, *, kept: bool, why: str) -> None:
        with self._lock:
            if self._kept.get(kind) == kept:
                return
            self._kept[kind] = kept
        if kept:
            log.info("%s keeps status.integrations: records are mirrored there", kind)
        else:
            log.info("%s: not mirroring records to status.integrations: %s", kind, why)


def _integrations(obj: Mapping[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    entries = status.get("integrations") if isinstance(status, Mapping) else None
    return list(entries) if isinstance(entries, list) else []
