"""Reading a PipelineRun's child TaskRuns as they are now, for what its reports show.

One list by the label Tekton sets on every child (``tekton.dev/pipelineRun=<name>``) where the
client can list, else one read per child the run's status names. Either way the children come in
the order the run's ``childReferences`` name them (the pipeline's order), at most ``limit`` of
them, and a vanished or unreadable child only makes the list shorter. Kubernetes being unavailable is
raised (``KubernetesUnavailableError``): nothing has been sent yet, and the redelivery shows them.
"""

from __future__ import annotations

import logging

from common import deadline
from common.errors import IntegrationError, KubernetesUnavailableError, MalformedEventError, RunNotFoundError
from common.events import Run, parse_run
from common.runclient import ClusterAccess, RunClient, RunRef
from common.summary import child_references

log = logging.getLogger(__name__)

MAX_CHILDREN = 50
"""Child TaskRuns read at most for a summary of failed tasks (``Context.child_runs``), and read one
by one at most where the client cannot list them."""
PARENT_LABEL = "tekton.dev/pipelineRun"
MAX_LABEL_VALUE = 63
"""A label value's longest: a longer run name cannot be selected by label."""


def read_children(
    client: RunClient | ClusterAccess, run: Run, *, limit: int | None = MAX_CHILDREN
) -> list[Run]:
    """``run``'s child TaskRuns, in the order its status names them (see the module docstring):
    the first ``limit`` it names (all of them with ``None``), and never more than ``MAX_CHILDREN``
    read one by one."""
    names = [name for _, name in child_references(run)][:limit]
    if not names:
        return []
    with deadline.suspended():  # the client's calls keep their own timeouts
        if isinstance(client, ClusterAccess) and len(run.name) <= MAX_LABEL_VALUE:
            found = _listed(client, run)
        elif isinstance(client, RunClient):
            found = _read_one_by_one(client, run, names[:MAX_CHILDREN])
        else:
            return []  # a client that only lists, and a run name no label can hold
    order = {name: index for index, name in enumerate(names)}
    return sorted((child for child in found if child.name in order), key=lambda child: order[child.name])


def _listed(client: ClusterAccess, run: Run) -> list[Run]:
    try:
        listed = client.list_runs("TaskRun", run.namespace, f"{PARENT_LABEL}={run.name}")
    except KubernetesUnavailableError:
        raise
    except IntegrationError as e:
        log.warning("the TaskRuns of %s/%s could not be listed: %s", run.namespace, run.name, e.message)
        return []
    children = []
    for obj in listed:
        try:
            children.append(parse_run("TaskRun", obj))
        except MalformedEventError:
            continue
    return children


def _read_one_by_one(client: RunClient, run: Run, names: list[str]) -> list[Run]:
    children = []
    for name in names:
        try:
            children.append(parse_run("TaskRun", client.get(RunRef("TaskRun", run.namespace, name))))
        except KubernetesUnavailableError:
            raise
        except (RunNotFoundError, IntegrationError, MalformedEventError):
            continue
    return children
