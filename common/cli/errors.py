"""The CLI's exit codes and the one place where errors become a message and a code.

Exit codes (docs/cli.md, and ``EXIT_CODES_HELP`` at the end of ``--help``):

- 0: done; for ``status``, at least one run matched; for ``doctor``, every check passed;
- 1: an error not listed below (a function answered non-2xx to ``send``, ``resync`` left work
  undone, ``doctor`` found a problem, ``render`` could not use a template);
- 2: bad usage (argparse);
- 3: ``status`` matched no run in the namespaces searched: an answer, not an error;
- 4: the run named on the command line does not exist;
- 5: no cluster: no kubeconfig, unknown context, or the API server cannot be reached;
- 6: no permission: the API server answered 401 or 403 (``doctor``: a check could not be made);
- 130: interrupted (Ctrl-C), except ``status -w``, which then ends with 0.
"""

from __future__ import annotations

from enum import IntEnum

from common.errors import IntegrationError, KubernetesUnavailableError, RunNotFoundError


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NO_MATCH = 3
    RUN_NOT_FOUND = 4
    NO_CLUSTER = 5
    FORBIDDEN = 6


EXIT_CODES_HELP = """\
exit codes:
  0  done (status: a run matched; doctor: every check passed)
  1  error (send: the function answered non-2xx; resync: a delivery is left; doctor: a problem;
     render: a template fell back)
  2  bad usage
  3  status matched no run in the namespaces searched (an answer, not an error)
  4  the run named does not exist
  5  no cluster: no kubeconfig, unknown context, or the API server is unreachable
  6  no permission: the API server answered 401 or 403
See docs/cli.md."""


class CliError(Exception):
    """An error to print (``error: <message>``, then ``hint``) before exiting with ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def as_cli_error(error: Exception) -> CliError | None:
    """The ``CliError`` for an exception from the runtime's Kubernetes layer, else ``None``."""
    if isinstance(error, CliError):
        return error
    if isinstance(error, RunNotFoundError):
        return CliError(str(error), ExitCode.RUN_NOT_FOUND)
    if isinstance(error, KubernetesUnavailableError):
        return CliError(
            f"cannot reach Kubernetes: {error.message}",
            ExitCode.NO_CLUSTER,
            "check KUBECONFIG and --context (`kubectl config current-context`), and that the cluster is up",
        )
    if isinstance(error, IntegrationError) and error.reason == "KubernetesForbidden":
        return CliError(
            error.message,
            ExitCode.FORBIDDEN,
            "this command needs get/list on pipelineruns and taskruns (tekton.dev) and list on events; "
            "check with `kubectl auth can-i list pipelineruns -n NAMESPACE`",
        )
    if isinstance(error, IntegrationError):
        return CliError(f"{error.reason}: {error.message}", ExitCode.ERROR)
    return None
