"""Rule: config_invalid — a config file exists but does not parse or validate.

Recognises, with the file and line the program names: nginx's `[emerg] unknown directive "foo" in
/etc/nginx/nginx.conf:12` (and `nginx: configuration file ... test failed`); Alertmanager's and
Prometheus's `Loading configuration file failed` / `Error loading config` with `file=` and
`err="yaml: unmarshal errors:\\n  line 3: field foo not found in type config.plain"`; go-yaml's
`yaml: line 3: ...`, TOML's `toml: line 3`; PyYAML's `yaml.scanner.ScannerError` with its
`in "/etc/app.yml", line 3, column 5` lines; `tomllib.TOMLDecodeError`, `configparser` errors,
`json.JSONDecodeError` when a config file is being read; SnakeYAML, Psych, js-yaml and
node-config parse errors; Spring's `Failed to bind properties under 'x'`; PostgreSQL's `syntax
error in file "..." line N` / `unrecognized configuration parameter` / `configuration file "..."
contains errors` / `invalid value for parameter`; Redis's `*** FATAL CONFIG FILE ERROR` with its
`at line N` and `>>> 'directive'` lines; MySQL's `unknown variable` and `Found option without
preceding group in config file F at line N`; HAProxy's `parsing [F:N]`; Apache's `Syntax error on
line N of F`; Mosquitto's `Error found at F:N`; and, at medium confidence, generic `invalid
configuration` / `config error` / `failed to load config` lines.

Traps: a config file that is not there is config_missing's (lines saying no such file, ENOENT,
not found or does not exist are skipped), a name in the config that does not resolve (nginx's
`host not found in upstream`) is dns_failure's, an OS error nginx reports with a file:line
(`open() ... failed (13: Permission denied)`) is not a syntax error. A JSON decode error with no
config file in sight (an HTTP response body, say) is not claimed.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, Match, search_unless
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding

_NOT_MINE = (
    r"(?i:no such file|ENOENT|not found in \"?\[|does not exist|permission denied|cannot find"
    r"|could not open|can't open|is a directory|config\S*(?: file)? path)"
    # a name that does not resolve; not a config field called `host`/`smarthost` that a schema
    # does not know (`field smarthost not found in type config.plain` is this rule's)
    r"|\bhost not found(?! in type)"
    r"|failed \(\d+: |(?i:environment variable|\benv var)"
)
_CONFIG_EXT = r"(?:ya?ml|json|toml|ini|conf|cfg|cnf|properties|xml|hcl)"
# (pattern, confidence); groups: file, line, reason (each optional)
_FORMS: tuple[tuple[str, Confidence], ...] = (
    (
        r"\[emerg\] (?:\d+#\d+: )?(?P<reason>.+?) in (?P<file>/\S+?):(?P<line>\d+)\s*$",
        Confidence.HIGH,
    ),
    (
        r"msg=\"?(?:Loading configuration file failed|Error loading config)[^\n]*?"
        r"(?:file=\"?(?P<file>[^\s\"]+))?[^\n]*?err=\"(?P<reason>(?:[^\"\\]|\\.)*)\"",
        Confidence.HIGH,
    ),
    (
        r"(?:Loading configuration file failed|Error loading config)[:\s]*(?P<reason>.+)",
        Confidence.HIGH,
    ),
    (r"FAILED: parsing YAML file (?P<file>\S+?): (?P<reason>.+)", Confidence.HIGH),
    (
        r"^(?:\w+\.)*(?:yaml|ruamel\.yaml)\.\w+\.(?:Scanner|Parser|Composer|Constructor|Reader)"
        r"Error: (?P<reason>.*)",
        Confidence.HIGH,
    ),
    (
        r"^(?:\w+\.)*(?:tomllib|tomli|toml\.decoder|tomlkit\.exceptions|toml)\.\w*(?:Decode|Parse)"
        r"Error: (?P<reason>.+)",
        Confidence.HIGH,
    ),
    (r"^configparser\.\w+Error: (?P<reason>.+)", Confidence.HIGH),
    (
        r"(?:Psych::SyntaxError|YAML syntax error occurred while parsing)[:\s]*"
        r"(?:\((?P<file>[^)]+)\): |(?P<file2>\S+)\.? )?(?P<reason>.*)",
        Confidence.HIGH,
    ),
    (r"YAMLException: (?P<reason>.+)", Confidence.HIGH),
    (r"org\.yaml\.snakeyaml\.\w+\.\w+Exception: (?P<reason>.+)", Confidence.HIGH),
    (r"Cannot parse config file: '(?P<file>[^']+)': (?P<reason>.+)", Confidence.HIGH),
    (rf"SyntaxError: (?P<file>\S+\.{_CONFIG_EXT}): (?P<reason>.+)", Confidence.HIGH),
    (
        r"(?:While parsing config|error parsing config(?: file)?|failed to parse config(?: file)?)"
        r"[^:]*: (?P<reason>.+)",
        Confidence.HIGH,
    ),
    (r"\byaml: (?:line (?P<line>\d+): )?(?P<reason>.+)", Confidence.MEDIUM),
    (r"\btoml: line (?P<line>\d+)[^:]*: (?P<reason>.+)", Confidence.MEDIUM),
    (r"Failed to bind properties under '(?P<reason>[^']+)'", Confidence.HIGH),
    (r"Failed to load property source from location '(?P<file>[^']+)'", Confidence.HIGH),
    (
        r"syntax error in file \"(?P<file>[^\"]+)\" line (?P<line>\d+)(?:, (?P<reason>near .+))?",
        Confidence.HIGH,
    ),
    (
        r"(?P<reason>unrecognized configuration parameter \"[^\"]+\") in file \"(?P<file>[^\"]+)\""
        r" line (?P<line>\d+)",
        Confidence.HIGH,
    ),
    (r"(?P<reason>invalid value for parameter \"[^\"]+\": .+)", Confidence.HIGH),
    (r"line (?P<line>\d+) of configuration file \"(?P<file>[^\"]+)\"", Confidence.HIGH),
    (r"could not load (?P<file>pg_hba\.conf|pg_ident\.conf)", Confidence.HIGH),
    (r"\*\*\* FATAL CONFIG FILE ERROR", Confidence.HIGH),
    (r"(?P<reason>unknown variable '[^']+')", Confidence.HIGH),
    (r"(?P<reason>unknown option '[^']+')", Confidence.HIGH),
    (
        r"(?P<reason>Found option without preceding group) in config file (?P<file>\S+) at line"
        r" (?P<line>\d+)",
        Confidence.HIGH,
    ),
    (r"parsing \[(?P<file>[^\]:]+):(?P<line>\d+)\] ?: (?P<reason>.+)", Confidence.HIGH),
    (r"Syntax error on line (?P<line>\d+) of (?P<file>\S+?):?$", Confidence.HIGH),
    (r"Error found at (?P<file>\S+?):(?P<line>\d+)", Confidence.HIGH),
    (
        r"(?:adapting config using \w+|[Cc]onfig(?:uration)? error): "
        rf"(?P<file>\S+\.?(?:{_CONFIG_EXT}|Caddyfile)?):(?P<line>\d+):? (?P<reason>.+)",
        Confidence.HIGH,
    ),
)
# Lines that say only that the config is bad: used when nothing above names where or why.
_SUMMARY_FORMS: tuple[tuple[str, Confidence], ...] = (
    (r"configuration file \"(?P<file>[^\"]+)\" contains errors", Confidence.HIGH),
    (r"nginx: configuration file (?P<file>\S+) test failed", Confidence.HIGH),
    (r"Fatal errors found in configuration", Confidence.HIGH),
    (
        r"(?i:invalid configuration|configuration is invalid|config(?:uration)? error"
        r"|error (?:loading|parsing|reading|in) (?:the )?config(?:uration)?"
        r"|failed to (?:load|parse|read|validate) (?:the )?config(?:uration)?|invalid config\b"
        r"|bad config(?:uration)?\b)[:\s]*(?P<reason>.*)",
        Confidence.MEDIUM,
    ),
)
_PATTERNS = tuple((re.compile(p), conf) for p, conf in _FORMS + _SUMMARY_FORMS)


_GROUP_NAME = re.compile(r"\?P<\w+>")


def _any(forms: tuple[tuple[str, Confidence], ...]) -> re.Pattern[str]:
    """One pattern for a tier of forms, their group names dropped (names repeat across forms)."""
    return re.compile("|".join("(?:" + _GROUP_NAME.sub("", p) + ")" for p, _ in forms))


_IS_NOT_MINE = re.compile(_NOT_MINE)


_TIERS = (_any(_FORMS), _any(_SUMMARY_FORMS))
_JSON = re.compile(r"JSONDecodeError: (?P<reason>.+)|SyntaxError: (?P<reason2>.+ in JSON\b.*)")
_YAML_MARK = re.compile(r'in "(?P<file>[^"<>]+)", line (?P<line>\d+)(?:, column (?P<col>\d+))?')
_LINE = re.compile(r"\bline[: ]+(?P<line>\d+)|at line (?P<line2>\d+)|\((?P<line3>\d+):\d+\)")
_REDIS_LINE = re.compile(r"at line (?P<line>\d+)")
_REDIS_DIRECTIVE = re.compile(r"^>>> '(?P<directive>.*)'")
_FILE_NEAR = re.compile(
    rf"""['"]([\w./@-]+\.{_CONFIG_EXT})['"]|(?<![\w.])((?:\.{{0,2}}/)[\w./@-]+\.{_CONFIG_EXT})\b"""
)
_SUMMARY_REASON = 140
_CONFIRMS = re.compile(r"test failed|contains errors|HINT:|Fatal errors found")
_LINE_PREFIX = re.compile(r"^line \d+: ")


def rule(c: Clues) -> Finding | None:
    found = next(
        (hit for tier in _TIERS if (hit := search_unless(c, tier, _IS_NOT_MINE)) is not None),
        None,
    )
    confidence = Confidence.HIGH
    if found is not None:
        pattern, confidence = next((p, k) for p, k in _PATTERNS if p.search(found.line.text))
        m = pattern.search(found.line.text)
        assert m is not None
        groups = {k: v for k, v in m.groupdict().items() if v}
    else:
        found = c.search(_JSON)
        if found is None:
            return None
        groups = {"reason": found["reason"] or found["reason2"]}
        near = c.facts.log[max(0, found.at - 10) : found.at]
        named = next((n for ln in near if (n := _config_file(ln.text))), "")
        if not named:
            return None  # a JSON body that was not a config file: not this rule's
        groups["file"] = named
    return _finding(c, found, groups, confidence)


def _finding(c: Clues, found: Match, groups: dict[str, str], confidence: Confidence) -> Finding:
    log = c.facts.log
    after = log[found.at + 1 : found.at + 8]
    file = groups.get("file") or groups.get("file2") or ""
    line = groups.get("line") or ""
    reason = _clean(groups.get("reason", ""))
    evidence = [c.quote(found.line)]
    extra = None
    if "FATAL CONFIG FILE ERROR" in found.line.text:  # Redis: the details follow
        for ln in after:
            if (m := _REDIS_LINE.search(ln.text)) and not line:
                line = m["line"]
            elif (d := _REDIS_DIRECTIVE.match(ln.text)) is not None:
                reason = f"'{d['directive']}'"
            elif line and reason and ln.text.strip():
                reason = f"{reason}: {ln.text.strip()}"
                extra = ln
                break
    marks = [(ln, m) for ln in after if (m := _YAML_MARK.search(ln.text))]
    if marks:  # PyYAML/SnakeYAML name the file and line on the lines after the error
        ln, m = marks[-1]
        file, line, extra = file or m["file"], line or m["line"], ln
    if not line and (m := _LINE.search(reason or found.line.text)):
        line = m["line"] or m["line2"] or m["line3"] or ""
    reason = _LINE_PREFIX.sub("", reason)
    if "syntax error in file" in found.line.text:
        reason = f"syntax error {reason}".strip()
    if not file:
        window = log[max(0, found.at - 5) : found.at + 3]
        file = next((f for ln in window if (f := _config_file(ln.text))), "")
    if extra is None:
        extra = next((ln for ln in after if _CONFIRMS.search(ln.text)), None)
    if extra is not None:
        evidence.append(c.quote(extra))
    if confidence is Confidence.MEDIUM and file and line:
        confidence = Confidence.HIGH
    return finding(
        Category.CONFIG_INVALID,
        _summary(c, file, line, reason),
        evidence,
        _fix(c, file, line, reason),
        specificity=Specificity.MESSAGE,
        confidence=confidence,
        confirm=""
        if confidence is Confidence.HIGH
        else f"{file or 'the config'} failing its own check"
        f" ({_validator(file, found.line.text) or 'the program’s config test'})",
        at=found.at,
    )


def _config_file(text: str) -> str:
    m = _FILE_NEAR.search(text)
    return (m[1] or m[2]) if m else ""


def _clean(reason: str) -> str:
    reason = reason.replace("\\n", "\n").replace('\\"', '"')
    lines = [ln.strip() for ln in reason.split("\n") if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]  # "yaml: unmarshal errors:" then the first error
    text = lines[0] if lines else ""
    return text if len(text) <= _SUMMARY_REASON else text[: _SUMMARY_REASON - 1] + "…"


def _summary(c: Clues, file: str, line: str, reason: str) -> str:
    what = f"config file {file}" if file else "configuration"
    at = f" at line {line}" if line else ""
    why = f": {reason.rstrip('.')}" if reason else ""
    return f"{c.who}'s {what} is invalid{at}{why}."


def _validator(file: str, text: str) -> str:
    f = file or "FILE"
    if "nginx" in text or "[emerg]" in text or "nginx" in file:
        return "`nginx -t`"
    if "alertmanager" in text or "alertmanager" in file:
        return f"`amtool check-config {f}`"
    if "prometheus" in text or "prometheus" in file:
        return f"`promtool check config {f}`"
    if "haproxy" in file or re.search(r"parsing \[", text):
        return f"`haproxy -c -f {f}`"
    if "Syntax error on line" in text:
        return "`apachectl configtest`"
    if "Caddyfile" in text or "caddy" in file:
        return f"`caddy validate --config {f}`"
    if re.search(r"\.ya?ml$", file) or "yaml" in text.lower():
        return f"`python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' {f}`"
    if file.endswith(".json") or "JSON" in text:
        return f"`python3 -m json.tool {f}`"
    if file.endswith(".toml") or "toml" in text.lower():
        return f"`python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], \"rb\"))' {f}`"
    return ""


def _fix(c: Clues, file: str, line: str, reason: str) -> str:
    where = (
        f"line {line} of {file}"
        if file and line
        else file or (f"line {line} of its config" if line else "its config")
    )
    about = f" ({reason})" if reason else ""
    check = _validator(file, reason)
    checked = f"; check the file with {check} before restarting" if check else ""
    return f"Fix {where}{about}{checked}. Then {c.restart_hint()}."
