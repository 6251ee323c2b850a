"""tls_error: certificate validation failures, and which fix each reason needs."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import tls_error


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # Python/OpenSSL: https://docs.python.org/3/library/ssl.html#ssl.SSLCertVerificationError
    pytest.param(
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)",  # noqa: E501
        "not signed by a certificate authority it trusts",
        "REQUESTS_CA_BUNDLE",
        id="python-untrusted",
    ),
    pytest.param(
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1129)",  # noqa: E501
        "expired",
        "-dates",
        id="python-expired",
    ),
    # https://github.com/kubernetes-sigs/metrics-server/issues/196
    pytest.param(
        'E0511 21:57:06.607078       1 scraper.go:140] "Failed to scrape node" err="Get \\"https://192.168.203.181:10250/metrics/resource\\": x509: cannot validate certificate for 192.168.203.181 because it doesn\'t contain any IP SANs" node="lke60627"',  # noqa: E501
        "192.168.203.181",
        "serverTLSBootstrap",
        id="go-no-ip-sans",
    ),
    # Go crypto/x509: https://pkg.go.dev/crypto/x509#UnknownAuthorityError
    pytest.param(
        'Get "https://registry.local:5000/v2/": x509: certificate signed by unknown authority',
        "registry.local:5000",
        "openssl s_client -connect registry.local:5000",
        id="go-unknown-authority",
    ),
    # Java PKIX: https://docs.oracle.com/en/java/javase/17/security/java-secure-socket-extension-jsse-reference-guide.html
    pytest.param(
        "Caused by: sun.security.validator.ValidatorException: PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path to requested target",  # noqa: E501
        "not signed by a certificate authority",
        "keytool -importcert",
        id="java-pkix",
    ),
    # Node: https://nodejs.org/api/tls.html (X509 error codes)
    pytest.param(
        "Error: self-signed certificate in certificate chain",
        "not signed by a certificate authority",
        "NODE_EXTRA_CA_CERTS",
        id="node-self-signed",
    ),
    pytest.param(
        "x509: certificate is valid for a.example.com, b.example.com, not c.example.com",
        "c.example.com",
        "subjectAltName",
        id="go-name-mismatch",
    ),
]


@pytest.mark.parametrize(("log", "said", "fix"), FIRES)
def test_fires_with_the_reasons_fix(log: str, said: str, fix: str) -> None:
    f = tls_error.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.TLS_ERROR
    assert said in f.summary
    assert fix in f.fix
    assert f.evidence[0].text == log
    assert f.confidence is Confidence.HIGH and f.specificity is Specificity.MESSAGE


def test_plain_http_port_is_medium_with_a_confirmation() -> None:
    f = tls_error.rule(
        Clues(facts("ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1007)"))
    )
    assert f is not None
    assert f.confidence is Confidence.MEDIUM and f.confirm


NEAR_MISSES = [
    pytest.param(
        "INFO loaded certificate /etc/ssl/certs/app.pem, valid until 2027-01-01", id="loaded"
    ),
    pytest.param("INFO TLS handshake completed with api.example.com", id="handshake-ok"),
    # a certificate file that is not there is config_missing's
    pytest.param("open /etc/tls/tls.crt: no such file or directory", id="missing-cert-file"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert tls_error.rule(Clues(facts(log))) is None


def test_wins_over_the_traceback_reading() -> None:
    log = """
    Traceback (most recent call last):
      File "/app/main.py", line 8, in <module>
        requests.get("https://api.internal/health")
    requests.exceptions.SSLError: HTTPSConnectionPool(host='api.internal', port=443): Max retries exceeded with url: /health (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)')))
    """  # noqa: E501
    d = diagnose(facts(log))
    assert d.finding.category is Category.TLS_ERROR
    assert d.finding.deterministic


def test_a_repeated_rejection_quotes_its_first_line_and_says_how_many() -> None:
    # a Prometheus scraping every node's exporter over HTTPS, each rejected the same way
    log = """
    ts=2024-05-01T10:00:01Z level=error msg="scrape failed" target=https://10.1.0.4:9100/metrics err="x509: certificate signed by unknown authority"
    ts=2024-05-01T10:00:01Z level=error msg="scrape failed" target=https://10.1.0.5:9100/metrics err="x509: certificate signed by unknown authority"
    ts=2024-05-01T10:00:02Z level=error msg="scrape failed" target=https://10.1.0.6:9100/metrics err="x509: certificate signed by unknown authority"
    """  # noqa: E501
    f = tls_error.rule(Clues(facts(log)))
    assert f is not None
    quoted = [e.text for e in f.evidence]
    assert "10.1.0.4" in quoted[0] and "10.1.0.6" in quoted[-1] and len(quoted) == 2
    assert "(3 lines report it)." in f.summary


def test_a_single_rejection_is_quoted_once() -> None:
    log = """
    level=info msg="starting"
    level=error msg="dial failed" err="x509: certificate has expired or is not yet valid"
    level=info msg="retrying in 5s"
    """
    f = tls_error.rule(Clues(facts(log)))
    assert f is not None and len(f.evidence) == 1 and "report it" not in f.summary
