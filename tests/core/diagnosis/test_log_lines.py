"""Log lines as the engine reads them: what a terminal or a collector put around a program's
own words is taken off, so rules match and quotes read as the program wrote them."""

from __future__ import annotations

from infraveil.core.diagnosis.facts import lines_of, strip_colours


def test_terminal_colour_codes_are_taken_off() -> None:
    [line] = lines_of("\x1b[1;31mFATAL\x1b[0m config: open /etc/app.yaml: no such file")
    assert line.text == "FATAL config: open /etc/app.yaml: no such file"


def test_colour_codes_that_lost_their_escape_are_taken_off_when_a_reset_says_so() -> None:
    assert strip_colours("[33mWARN[0m [db] retrying in [5m]") == "WARN [db] retrying in [5m]"
    # without a reset code, brackets are the program's own
    assert strip_colours("[main] took [5m] [31m") == "[main] took [5m] [31m"


def test_kubectl_logs_prefix_is_a_collector_prefix() -> None:
    lines = lines_of(
        '[pod/web-5d9f/nginx] 2024/03/01 10:00:00 [emerg] 1#1: unknown directive "servr"\n'
        "[pod/web-5d9f/nginx] nginx: configuration file /etc/nginx/nginx.conf test failed\n"
    )
    assert [x.text[:10] for x in lines] == ["2024/03/01", "nginx: con"]
