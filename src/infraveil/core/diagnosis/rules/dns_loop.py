"""Rule: dns_loop — CoreDNS forwards queries to itself and stops (`plugin/loop: ... loop
detected`).

CoreDNS forwards what it does not serve to the resolvers in the node's /etc/resolv.conf; when
that file names a local stub (systemd-resolved's 127.0.0.53, a dnsmasq on 127.0.0.1), the
queries come back to CoreDNS, its loop plugin sees its own probe query again and exits, and the
pod crash-loops. Both wordings of the plugin are read (`Loop (A -> B) detected for zone` and
`Seen "HINFO ..." more than twice, loop detected`).
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_LOOP = re.compile(
    r"plugin/loop: (?:Loop \([^)]*\) detected|Seen .* loop detected)|loop detected for zone"
)


def rule(c: Clues) -> Finding | None:
    found = c.search(_LOOP, decisive_first=False)
    if found is None:
        return None
    return finding(
        Category.DNS_LOOP,
        f"{c.who} (CoreDNS) detected a forwarding loop: the upstream it forwards to sends the"
        " queries back to it.",
        [c.quote(found.line)],
        "Point CoreDNS at real upstream resolvers: on nodes with systemd-resolved, set the"
        " kubelet's `resolvConf: /run/systemd/resolve/resolv.conf` (`--resolv-conf`) and"
        " restart the kubelet; or replace `forward . /etc/resolv.conf` in the Corefile"
        " (`kubectl -n kube-system edit configmap coredns`) with upstream IPs such as"
        " `forward . 1.1.1.1 8.8.8.8`. Then `kubectl -n kube-system rollout restart deployment"
        " coredns`.",
        specificity=Specificity.PLATFORM,
        at=found.at,
    )
