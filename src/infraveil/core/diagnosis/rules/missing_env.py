"""Rule: missing_env — a required environment variable or secret value is not set."""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, Match
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding


def _name(n: int, *, any_case: bool = True) -> str:
    # after an explicit "environment variable", any identifier is one; elsewhere only the
    # SHOUTING_CASE that environment variables are written in
    # (a name starts at a word boundary and is taken whole, never given back: on a long line
    # of letters, anything else would try every start and every length)
    word = r"[A-Za-z_][A-Za-z0-9_]{1,80}+" if any_case else r"[A-Z][A-Z0-9_]{2,80}+"
    return rf"[`'\"]?(?P<name{n}>\b{word})[`'\"]?"


# Explicit messages naming the variable, from many runtimes and libraries.
_SAYS = re.compile(
    rf"(?:environment variable|env(?:ironment)? var(?:iable)?|env key|required key)s?:? {_name(1)}"
    r"(?: (?:is |was )?(?:not set|not defined|not available|undefined|unset|missing|required|empty"
    r"|must be (?:set|defined|provided)|should not be empty|missing value)"
    r"| (?:is )?not (?:set|found|present))"
    rf"|\b{_name(2, any_case=False)} (?:environment variable |env var(?:iable)? )"
    r"(?:is |was )?(?:not set|not defined|undefined|missing|required|must be set|is empty)"
    rf"|(?:[Mm]issing|[Rr]equired|[Nn]o|[Uu]ndefined|[Uu]nset) (?:required )?"
    rf"(?:environment variable|env(?:ironment)? var(?:iable)?)s?:? {_name(3)}"
    rf"|[Ss]et the {_name(4)} environment variable"
    rf"|{_name(5)}: (?:unbound variable|parameter (?:null or )?not set)"
    rf"|You must specify {_name(6, any_case=False)}"
    rf"|(?:must|should) (?:set|specify|provide) (?:the )?{_name(7, any_case=False)}\b"
    r"|Missing [`'](?P<name8>secret_key_base)[`'] for '\w+' environment"
    r"|The (?P<name9>SECRET_KEY) setting must not be empty"
    rf"|\b{_name(10, any_case=False)} is a required (?:environment )?variable"
    rf"|(?:Invalid|Bad|Malformed) value for env(?:ironment)? var(?:iable)?(?: named)? {_name(11)}"
)
# KeyError: 'DATABASE_URL' (Python), a KeyError on an environment-style name
_KEY_ERROR = re.compile(r"^(?:\w+\.)*KeyError: ['\"](?P<name>[A-Z][A-Z0-9_]{2,})['\"]\s*$")
_ENVIRON = re.compile(r"os\.environ|getenv|ENV\[|process\.env")


def rule(c: Clues) -> Finding | None:
    said = c.search(_SAYS)
    if said is not None:
        name = next(v for v in said.match.groupdict().values() if v)
        return _finding(c, said, name, Confidence.HIGH)
    key = c.search(_KEY_ERROR)
    if key is None or not c.on_decisive(key):
        return None
    near = c.facts.log[max(0, key.at - 8) : key.at]
    environ = any(_ENVIRON.search(line.text) for line in near)
    return _finding(c, key, key["name"], Confidence.HIGH if environ else Confidence.MEDIUM)


def _finding(c: Clues, found: Match, name: str, confidence: Confidence) -> Finding:
    where = "its `env` or `env_file` in infraveil.toml" if c.facts.service else "its environment"
    return finding(
        Category.MISSING_ENV,
        f"{c.who} needs the environment variable {name}, which is not set.",
        [c.quote(found.line)],
        f"Set {name} in {where}, then {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        confidence=confidence,
        confirm=""
        if confidence is Confidence.HIGH
        else f"the traceback reading {name} from the environment (os.environ) just above this line",
        at=found.at,
    )
