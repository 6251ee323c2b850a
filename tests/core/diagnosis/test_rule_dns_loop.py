"""dns_loop: CoreDNS's loop plugin, in both of its wordings."""

from __future__ import annotations

import pytest

from diagnosis_support import apply, engine
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.rules.dns_loop import rule


@pytest.mark.parametrize(
    "line",
    [
        # https://github.com/coredns/coredns/issues/2087
        '2018/09/06 13:02:45 [FATAL] plugin/loop: Seen "HINFO IN 2050421060481615995.5620656063561519376." more than twice, loop detected',  # noqa: E501
        # the wording since CoreDNS 1.2.6
        '[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone ".", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO 4547991504243258144.3688648895315093531."',  # noqa: E501
    ],
)
def test_the_loop_plugin_stops_coredns(line: str) -> None:
    log = f".:53\n[INFO] CoreDNS-1.6.7\n{line}"
    f = apply(rule, log, exit_code=1)
    assert f is not None and f.category is Category.DNS_LOOP
    assert [e.text for e in f.evidence] == [line]
    assert "resolvConf: /run/systemd/resolve/resolv.conf" in f.fix
    assert engine(log, exit_code=1).finding.category is Category.DNS_LOOP


def test_the_loop_plugin_loading_is_not_a_loop() -> None:
    assert apply(rule, "[INFO] plugin/loop: no loop detected yet\n[INFO] plugin/reload") is None
    assert apply(rule, "for loop detected an off-by-one") is None
