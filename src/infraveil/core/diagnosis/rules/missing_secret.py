"""Rule: missing_secret — a Secret (or one key of it) the container needs does not exist.

The kubelet's words are those of a missing ConfigMap with `secret` for `configmap`
(`Error: secret "db" not found`, `couldn't find key password in Secret shop/db`, a `FailedMount`
of a secret volume); missing_configmap.missing_ref reads both.
"""

from __future__ import annotations

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding
from infraveil.core.diagnosis.rules.missing_configmap import missing_ref


def rule(c: Clues) -> Finding | None:
    return missing_ref(c, "Secret")
