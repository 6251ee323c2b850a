"""Rule: tls_error — a TLS handshake failed because a certificate did not validate.

Recognises each runtime's wording: Python/OpenSSL's `[SSL: CERTIFICATE_VERIFY_FAILED] certificate
verify failed: unable to get local issuer certificate` (or `self signed certificate in
certificate chain`, `certificate has expired`, `Hostname mismatch`); Go's `x509: certificate
signed by unknown authority`, `x509: certificate has expired or is not yet valid`, `x509:
certificate is valid for a, not b`, `x509: cannot validate certificate for 10.0.0.1 because it
doesn't contain any IP SANs`, `x509: certificate relies on legacy Common Name field`; Java's
`SSLHandshakeException`, `PKIX path building failed`, `CertificateExpiredException`, `No subject
alternative names matching`; Node's codes `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `CERT_HAS_EXPIRED`,
`DEPTH_ZERO_SELF_SIGNED_CERT`, `SELF_SIGNED_CERT_IN_CHAIN`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`,
`ERR_TLS_CERT_ALTNAME_INVALID`; curl's `SSL certificate problem: ...`; .NET's `The remote
certificate is invalid`; a server's own `key values mismatch`; and, at medium confidence, a
plain-text port spoken to with TLS (`WRONG_VERSION_NUMBER`, `first record does not look like a
TLS handshake`). The reason decides the fix: trust the CA, renew, or reissue with the right names.

Traps: a certificate file that is not there is config_missing (a missing file), not this rule.
A handshake error that was retried and then recovered is a keyword only (see
`dependency_unreachable.superseded`).
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, superseded
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding

# the reasons, most specific first: one line may say both "verify failed" and why
_REASONS = {
    "expired": r"certificate has expired|CERT_HAS_EXPIRED|CertificateExpiredException"
    r"|certificate is not yet valid",
    "name": r"doesn't contain any IP SANs|certificate is valid for .+, not \S+|Hostname mismatch"
    r"|hostname '[^']+' doesn't match|ERR_TLS_CERT_ALTNAME_INVALID"
    r"|does not match certificate's altnames|No subject alternative (?:DNS )?names? matching"
    r"|No name matching \S+ found|relies on legacy Common Name field"
    r"|certificate is not valid for",
    "untrusted": r"certificate signed by unknown authority|unable to get local issuer certificate"
    r"|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|unable to verify the first certificate"
    r"|UNABLE_TO_VERIFY_LEAF_SIGNATURE|self[- ]signed certificate|DEPTH_ZERO_SELF_SIGNED_CERT"
    r"|SELF_SIGNED_CERT_IN_CHAIN|PKIX path building failed"
    r"|unable to find valid certification path|certificate verify failed"
    r"|CERTIFICATE_VERIFY_FAILED|SSL certificate problem|remote certificate is invalid"
    r"|SSLHandshakeException|x509: ",
    "mismatch": r"key values mismatch|private key does not match",
    "plain": r"WRONG_VERSION_NUMBER|first record does not look like a TLS handshake"
    r"|server gave HTTP response to HTTPS client",
}
_REASON = {kind: re.compile(pattern) for kind, pattern in _REASONS.items()}
_TLS = re.compile("|".join(f"(?:{p})" for p in _REASONS.values()))
_HOSTS = tuple(
    re.compile(p)
    for p in (
        r"validate certificate for (\S+) because",
        r"not valid for '([^']+)'",
        r"hostname '([^']+)' doesn't match",
        r"valid for .+, not (\S+?)[\"'\s]*$",
        r"matching (?:IP address )?(\S+) found",
        r"Host: (\S+?)\. is not in the cert",
        r"https://\[?([\w.-]+(?::\d+)?)",
        r"\bto \[?([\w.-]+\.[a-z]{2,}(?::\d+)?)\b",
        r"host='([^']+)'",
    )
)


def rule(c: Clues) -> Finding | None:
    found = c.search(_TLS)
    if found is None:
        return None
    text = found.line.text
    kind = next(k for k, pattern in _REASON.items() if pattern.search(text))
    host = _host(
        [text] + [ln.text for ln, _ in c.decisive_lines()] if c.on_decisive(found) else [text]
    )
    late = superseded(c, found)
    # the same rejection repeated (a scraper failing on every node, every retry): the first is
    # where it began (quoted first), the one found is where it ended
    run = c.cascade(found, _REASON[kind])
    quoted = [c.quote(m.line) for m in (run[0], found)[: 1 if len(run) == 1 else 2]]
    confidence = Confidence.MEDIUM if kind == "plain" else Confidence.HIGH
    return finding(
        Category.TLS_ERROR,
        _summary(c, kind, host)[:-1] + (f" ({len(run)} lines report it)." if len(run) > 1 else "."),
        quoted,
        _fix(c, kind, host),
        specificity=Specificity.KEYWORD if late else Specificity.MESSAGE,
        confidence=Confidence.LOW if late else confidence,
        confirm=_confirm(kind, host, late),
        at=found.at,
    )


def _host(texts: list[str]) -> str:
    for text in texts:
        for pattern in _HOSTS:
            if m := pattern.search(text):
                return m[1]
    return ""


def _summary(c: Clues, kind: str, host: str) -> str:
    of = f" of {host}" if host else ""
    return {
        "expired": f"{c.who} rejected the TLS certificate{of}: it has expired (or is not valid"
        " yet).",
        "name": f"{c.who} rejected the TLS certificate{of}: it is not valid for the name or IP"
        " address used to connect.",
        "untrusted": f"{c.who} rejected the TLS certificate{of}: it is not signed by a"
        " certificate authority it trusts.",
        "mismatch": f"{c.who} could not load its TLS certificate: the private key does not match"
        " it.",
        "plain": f"{c.who}'s TLS handshake{' with ' + host if host else ''} failed: the other end"
        " does not speak TLS on that port.",
    }[kind]


def _fix(c: Clues, kind: str, host: str) -> str:
    target = host if host and ":" in host else f"{host or 'HOST'}:443"
    show = f"`openssl s_client -connect {target} -showcerts </dev/null`"
    then = f" Then {c.restart_hint()}."
    if kind == "expired":
        return (
            f"Renew the certificate on the server; see its dates with {show[:-1]} | openssl x509"
            " -noout -dates`. If it looks valid, check this host's clock (`timedatectl`)." + then
        )
    if kind == "name":
        return (
            "Connect using a name the certificate lists (see its subjectAltName with"
            f" {show}), or reissue it with that DNS name or IP address in its SANs; for"
            " metrics-server scraping kubelets by IP, have kubelets serve certificates signed by"
            " the cluster CA (`serverTLSBootstrap: true`) rather than skipping verification." + then
        )
    if kind == "untrusted":
        return (
            "Give the program the CA that signed the server's certificate (`SSL_CERT_FILE` /"
            " `REQUESTS_CA_BUNDLE` for Python, `NODE_EXTRA_CA_CERTS` for Node, the JVM truststore"
            " via `keytool -importcert`, or the system store with `update-ca-certificates`), or"
            f" make the server send its full chain; inspect it with {show}. Do not turn"
            " verification off." + then
        )
    if kind == "mismatch":
        return (
            "Install the certificate together with the key it was issued for: `openssl x509"
            " -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` must print the same"
            " key." + then
        )
    return (
        "Check the scheme and port: `https://` (or TLS) aimed at a plain-HTTP port, or the other"
        " way round; the server's TLS port is usually not its plain one." + then
    )


def _confirm(kind: str, host: str, late: bool) -> str:
    if late:
        return "the handshake was retried or followed by another failure: check what ended it"
    if kind == "plain":
        return f"`curl -v http://{host or 'HOST:PORT'}/` answering in plain HTTP"
    return ""
