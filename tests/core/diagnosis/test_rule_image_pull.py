"""image_pull: why the node cannot pull the image, from the registry's words, and the fix for
that reason with the exact image."""

from __future__ import annotations

import pytest
from kube_support import apply, engine, warning

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules.image_pull import rule

IMAGE = "registry.example.com/shop/api:1.4.2"


def pulled(desc: str) -> str:
    return f'Failed to pull image "{IMAGE}": rpc error: code = Unknown desc = {desc}'


@pytest.mark.parametrize(
    ("desc", "what", "fix", "deterministic"),
    [
        (
            f'failed to resolve reference "{IMAGE}": {IMAGE}: not found',
            "does not exist",
            "Fix the image name or tag",
            True,
        ),
        (
            "Error response from daemon: pull access denied for kubecloud, repository does not"
            " exist or may require 'docker login': denied: requested access to the resource is"
            " denied",
            "does not exist or needs a login",
            "imagePullSecrets",
            True,
        ),
        (
            "failed to authorize: failed to fetch anonymous token: unexpected status: 401"
            " Unauthorized",
            "without credentials",
            "docker-registry regcred",
            True,
        ),
        (
            "toomanyrequests: You have reached your pull rate limit.",
            "rate limit",
            "mirror",
            False,
        ),
        (
            'Head "https://registry.example.com/v2/shop/api/manifests/1.4.2": dial tcp: lookup'
            " registry.example.com on 10.0.0.2:53: no such host",
            "cannot reach the registry",
            f"crictl pull {IMAGE}",
            False,
        ),
        (
            "x509: certificate signed by unknown authority",
            "does not trust",
            "certs.d",
            True,
        ),
        (
            "no matching manifest for linux/arm64/v8 in the manifest list entries",
            "CPU architecture",
            "buildx",
            True,
        ),
    ],
)
def test_the_registrys_words_decide_the_fix(
    desc: str, what: str, fix: str, deterministic: bool
) -> None:
    events = (warning("Failed", pulled(desc), 4), warning("Failed", "Error: ErrImagePull", 4))
    f = apply(rule, events=events, waiting_reason="ImagePullBackOff", image=IMAGE)
    assert f is not None and f.category is Category.IMAGE_PULL
    assert f.evidence[0].text == pulled(desc) and f.evidence[1].text == "ImagePullBackOff"
    assert what in f.summary and IMAGE in f.summary and fix in f.fix
    assert f.deterministic is deterministic


def test_only_the_waiting_reason_is_still_an_image_pull_saying_what_to_read() -> None:
    f = apply(rule, waiting_reason="ErrImagePull", image=IMAGE)
    assert f is not None and f.confidence is Confidence.MEDIUM and f.confirm
    assert [e.source for e in f.evidence] == ["status.containerStatuses[api].state.waiting.reason"]


def test_the_pull_secrets_the_pod_has_are_named() -> None:
    events = (warning("Failed", pulled("unexpected status code 403 Forbidden")),)
    f = apply(rule, events=events, image=IMAGE, image_pull_secrets=("regcred",))
    assert f is not None and "`imagePullSecrets` (regcred)" in f.fix


def test_an_invalid_image_name() -> None:
    message = 'Failed to apply default image tag "Shop/API:1": couldn\'t parse image reference'
    f = apply(rule, waiting_reason="InvalidImageName", waiting_message=message, image="Shop/API:1")
    assert f is not None and "not a valid image reference" in f.summary


def test_a_running_container_with_a_pulled_image_is_not_a_pull_failure() -> None:
    assert apply(rule, events=(warning("BackOff", "Back-off restarting failed container"),)) is None
    d = engine("Error: boom", events=(), exit_code=1, image=IMAGE)
    assert d.finding.category is not Category.IMAGE_PULL


def test_the_line_with_the_registrys_words_is_quoted_not_the_back_off() -> None:
    f = apply(
        rule,
        waiting_reason="ImagePullBackOff",
        events=(
            warning("BackOff", f'Back-off pulling image "{IMAGE}"', count=48),
            warning("Failed", "Error: ErrImagePull", count=5),
            warning("Failed", pulled("failed to authorize: 401 Unauthorized"), count=5),
        ),
    )
    assert f is not None and f.category is Category.IMAGE_PULL
    assert "401 Unauthorized" in f.evidence[0].text
    assert "without credentials" in f.summary


def test_pull_lines_read_as_logs_quote_the_cause_and_name_the_image() -> None:
    # a paste of `reason: message` status lines, read as logs (no status known)
    log = (
        'ImagePullBackOff: Back-off pulling image "quay.io/acme/worker:2.0.1"\n'
        "ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image"
        ' "quay.io/acme/worker:2.0.1": failed to resolve reference'
        ' "quay.io/acme/worker:2.0.1": quay.io/acme/worker:2.0.1: not found\n'
    )
    f = apply(rule, log, status_known=False)
    assert f is not None
    assert f.evidence[0].text.startswith("ErrImagePull: rpc error")
    assert "quay.io/acme/worker:2.0.1" in f.summary and "does not exist" in f.summary


def test_only_a_back_off_names_the_image_it_pulls() -> None:
    f = apply(rule, events=(warning("BackOff", 'Back-off pulling image "ghcr.io/x/y:3"'),))
    assert f is not None and "ghcr.io/x/y:3" in f.summary


def test_an_rpc_error_about_something_else_is_not_a_pull_failure() -> None:
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create"
        ' failed: rpc error: exec: "/app/run": stat /app/run: no such file or directory'
    )
    assert apply(rule, terminated_reason="StartError", terminated_message=message) is None


@pytest.mark.parametrize(
    ("desc", "what"),
    [
        (
            'failed to do request: Head "https://10.0.0.9:5000/v2/app/manifests/1.0": http: server'
            " gave HTTP response to HTTPS client",
            "plain HTTP",
        ),
        (
            "Error response from daemon: Get https://r.example.com/v2/: no basic auth credentials",
            "without credentials",
        ),
        (
            "failed to copy: httpReadSeeker: failed open: unexpected status code 429 Too Many"
            " Requests",
            "rate limit",
        ),
    ],
)
def test_more_registry_words(desc: str, what: str) -> None:
    f = apply(rule, waiting_reason="ErrImagePull", events=(warning("Failed", pulled(desc)),))
    assert f is not None and what in f.summary
