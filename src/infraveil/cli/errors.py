"""The one place where errors become exit codes. These numbers are stable and documented."""

from __future__ import annotations

from infraveil.core import errors

OK = 0
FAILED = 1
"""The command ran, and what it reports is a failure (e.g. a service did not come up)."""
INTERNAL = 70
"""A bug in infraveil (EX_SOFTWARE): the traceback is saved to a file for the report."""

EXIT_CODES: dict[str, tuple[int, str]] = {
    "usage": (2, "wrong use of the command line"),
    errors.ManifestError.code: (2, "the manifest is invalid"),
    errors.AgentNotRunningError.code: (3, "no agent is running on the state directory"),
    errors.UnknownServiceError.code: (
        4,
        "no such service (or instance, or log; `doctor k8s`: no such pod)",
    ),
    errors.NotFoundError.code: (
        4,
        "no such service (or instance, or log; `doctor k8s`: no such pod)",
    ),
    errors.AgentAlreadyRunningError.code: (5, "an agent is already running on the state directory"),
    errors.CommandRefusedError.code: (6, "the agent refused the command in the service's state"),
    errors.StateDirError.code: (7, "the state directory cannot be used"),
    errors.PayloadError.code: (1, "the release payload was rejected (nothing changed)"),
    errors.ApiError.code: (8, "the agent answered with an unexpected error"),
    # `doctor k8s` (the codes are declared in infraveil.k8s.live and infraveil.k8s.bundle)
    "k8s_config": (9, "Kubernetes: no usable kubeconfig or context (or no `kubernetes` client)"),
    "k8s_unreachable": (10, "Kubernetes: the API server cannot be reached (or fails)"),
    "k8s_denied": (11, "Kubernetes: credentials rejected (401) or forbidden by RBAC (403)"),
    "bundle_invalid": (2, "a `doctor k8s --bundle` with no readable pod in it"),
}


def exit_code_for(error: errors.InfraveilError) -> int:
    return EXIT_CODES.get(error.code, (FAILED, ""))[0]
