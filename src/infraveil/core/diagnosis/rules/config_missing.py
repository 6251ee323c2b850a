"""Rule: config_missing — a config file (or another file the service needs) is not there.

Recognises ENOENT when the program opens a file, in each runtime's words: Python's
`FileNotFoundError: [Errno 2] No such file or directory: 'config.yml'`, Go's `open
/etc/app/config.yaml: no such file or directory`, Node's `ENOENT: no such file or directory, open
'./config.json'`, Java's `FileNotFoundException: /x (No such file or directory)` and
`NoSuchFileException`, Ruby's `Errno::ENOENT ... @ rb_sysopen - /x`, nginx's `open()
"/etc/nginx/x.conf" failed (2: No such file or directory)` and `cannot load certificate`;
and servers' own words: Redis's `can't open config file`, PostgreSQL's `could not access the
server configuration file`, MySQL's `Could not open required defaults file`, viper's `Config File
"config" Not Found in "[...]"`, Spring's `Config data location '...' does not exist`, and the
generic `Could not open configuration file` / `config file not found`. The summary names the
file; a relative path is pointed out, since it depends on the working directory. In
Kubernetes, the runtime's `error mounting "..." to rootfs at "/etc/app/app.yaml": ... not a
directory` is a volume mounted over a path of the other type, most often a `subPath` naming a
key its ConfigMap lacks.

Traps: the program itself missing is command_not_found's (`exec ...: no such file or
directory`, `spawn x ENOENT`, `can't open file 'app.py'`, `Unable to access jarfile`, a shell's
`x: not found`); so is a missing module or shared library (missing_module). A missing Unix socket
is a server not running (dependency_unreachable); a missing data directory is data_dir's. A
shell line `script: line 3: /path: No such file or directory` is claimed only when the path looks
like a config file. A warning that a file is missing and defaults are used is a keyword only.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, platform_said, search_unless, superseded
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

_NOT_MINE = (
    r"\bexec\b|exec:|spawn |can't open file|Unable to access jarfile|connect: |could not connect"
    r"|connect ENOENT|on socket|through socket|Is the server running|could not access directory"
    r"|[Dd]ata directory|Cannot find module|command not found|No module named|shared object"
    r"|error while loading shared libraries|shared library|dlopen|executable file not found"
)
_IS_NOT_MINE = re.compile(_NOT_MINE)
_MISSING = re.compile(
    r"(?:"
    r"(?i:no such file or directory)|ENOENT|NoSuchFileException|FileNotFoundException"
    r"|(?i:(?:could not|can't|cannot|unable to|failed to) open (?:the )?config(?:uration)? file)"
    r"|(?i:(?:invalid|bad|wrong) \S*config\S*(?: file)? path)"
    r"|(?i:is a directory)|EISDIR"
    r"|(?i:config(?:uration)? file \S*\s?(?:not found|does not exist|is missing))"
    r"|Config File \"[^\"]*\" Not Found|Could not open required defaults file"
    r"|Config data (?:location|resource) .* does not exist"
    r"|(?i:no config(?:uration)? file (?:found|provided|specified)))"
)
_PATHS = tuple(
    re.compile(p)
    for p in (
        r"No such file or directory: ['\"]([^'\"]+)['\"]",
        r"(?:open|stat|lstat|read|readlink|chdir) ([^\s:]+): (?:no such file|is a directory)",
        r"path:? ['\"]?(/[^\s'\"]+)",
        r"ENOENT: no such file or directory, \w+ '([^']+)'",
        r"(?:FileNotFoundException|NoSuchFileException): (\S+?)(?: \(|$)",
        r"rb_sysopen - (\S+)",
        r"open\(\) \"([^\"]+)\" failed",
        r"cannot load certificate(?: key)? \"([^\"]+)\"",
        r"config(?:uration)? file:? ['\"]?([^'\"\s:]+)['\"]?",
        r"defaults file:? (\S+)",
        r"Config File \"([^\"]+)\" Not Found in \"\[([^\]]*)\]\"",
        r"file \[([^\]]+)\]",
        r"location '(?:optional:)?(?:file:)?([^']+)' does not exist",
        r"['\"](\.{0,2}/?[\w.-]+(?:/[\w.@-]+)*\.\w+)['\"]",
        r"(?<![\w.])(/[\w.@-]+(?:/[\w.@-]+)+)",
    )
)
_IS_DIRECTORY = re.compile(r"(?i:is a directory)|EISDIR")
_SHELL_LINE = re.compile(
    r"^\S+: (?:line \d+: |\d+: )?(\S+): (?:No such file or directory|not found)"
)
_CONFIG_LIKE = re.compile(
    r"(?i)\.(?:ya?ml|json|toml|ini|conf|cfg|cnf|properties|xml|env|pem|crt|key|cert|hcl|rc)$"
    r"|config|conf\.d|settings|secrets?\b|/\.env"
)
_SAYS_CONFIG = re.compile(r"(?i)config")
_SOFT = re.compile(
    r"(?i)\b(?:warn(?:ing)?|info|notice|debug)\b|using defaults?|skipping|ignoring|optional"
)


# A container runtime that could not mount a volume over a path of the other type (a file
# over a directory or back): a subPath naming a key its ConfigMap or Secret lacks (the kubelet
# then mounts an empty directory), or a hostPath that is a directory where the image has a file.
_MOUNT_TYPE = re.compile(
    r'(?:error )?mounting \\?"(?P<src>[^"\\]+)\\?" to rootfs at \\?"(?P<dst>[^"\\]+)\\?"'
    r".*?(?:not a directory|Are you trying to mount a directory onto a file)",
    re.IGNORECASE,
)


def rule(c: Clues) -> Finding | None:
    if (mount := _mount_mismatch(c)) is not None:
        return mount
    if (env := _env_file_missing(c)) is not None:
        return env
    found = search_unless(c, _MISSING, _IS_NOT_MINE)
    if found is None:
        return None
    text = found.line.text
    path, where = _path(text)
    shell = _SHELL_LINE.match(text)
    if shell is not None and not _CONFIG_LIKE.search(shell[1]):
        return None  # a script running a program that is not there: command_not_found
    config = bool(_SAYS_CONFIG.search(text) or (path and _CONFIG_LIKE.search(path)))
    isdir = _IS_DIRECTORY.search(text) is not None
    soft = not c.on_decisive(found) and _SOFT.search(text) is not None
    late = soft or superseded(c, found)
    if late:
        confidence = Confidence.LOW
    elif config or c.on_decisive(found):
        confidence = Confidence.HIGH
    else:
        confidence = Confidence.MEDIUM
    noun = "config file" if config else "file"
    if isdir:
        summary = f"{c.who} could not read its {noun} {path or ''}: it is a directory, not a file."
        summary = summary.replace("  ", " ").replace(" :", ":")
    elif path:
        summary = f"{c.who} could not open its {noun} {path}: it does not exist."
    else:
        summary = f"{c.who} could not find a {noun} it needs."
    return finding(
        Category.CONFIG_MISSING,
        summary,
        [c.quote(found.line)],
        _isdir_fix(c, path) if isdir else _fix(c, path, where),
        specificity=Specificity.KEYWORD if late else Specificity.MESSAGE,
        confidence=confidence,
        confirm=_confirm(path, late),
        at=found.at,
    )


def _path(text: str) -> tuple[str, str]:
    for pattern in _PATHS:
        if m := pattern.search(text):
            groups = m.groups()
            return groups[0], (groups[1] if len(groups) > 1 else "")
    return "", ""


def _fix(c: Clues, path: str, where: str) -> str:
    then = f" Then {c.restart_hint()}."
    if not path:
        return (
            "Find which file it expects (the line above, or its `--config` flag or environment)"
            " and create or mount it." + then
        )
    if where:
        return (
            f"Put {path} (with a config extension) in one of the directories it searched"
            f" ({where}), or tell it where the file is (its config flag or environment)." + then
        )
    directory = path.rsplit("/", 1)[0] if "/" in path else "."
    relative = (
        ""
        if path.startswith("/")
        else f" {path} is relative, so it is looked up from the working directory: set the"
        + (
            " container's `workingDir` in the pod spec"
            if c.facts.kube is not None
            else " service's `cwd` in infraveil.toml"
        )
        + " or use an absolute path."
    )
    return (
        f"Create {path}, or mount it where the program expects it (a volume, bind mount,"
        f" ConfigMap or Secret that did not land: `ls -la {directory}` in the service's"
        " environment), or point the program at the right path (its config flag or environment)."
        + relative
        + then
    )


def _isdir_fix(c: Clues, path: str) -> str:
    it = path or "the path"
    return (
        f"{it} is a directory where a file was expected. This is what Docker creates when a bind"
        " mount's source file does not exist on the host: create the file on the host (remove"
        f" the empty directory Docker made), or fix the mount's source path; `ls -la {it}`"
        f" shows it. Then {c.restart_hint()}."
    )


def _confirm(path: str, late: bool) -> str:
    if late:
        return (
            "it may have gone on without the file (a warning, or a later failure ended it):"
            " check what ended the instance"
        )
    return ""


_ENV_FILE_MISSING = re.compile(r"^(?P<what>env_file|secrets file) not found: (?P<path>.+)$")
"""The agent's own words when a service's `env_file` or `secrets` file is not there: it reads
them before every start (runtime/environment.py), so the start fails before any preflight."""


def _env_file_missing(c: Clues) -> Finding | None:
    f = c.facts
    m = _ENV_FILE_MISSING.match(f.spawn_error)
    if m is None:
        return None
    field = "env_file" if m["what"] == "env_file" else "secrets"
    return finding(
        Category.CONFIG_MISSING,
        f"{c.who} was not started: its {m['what']} {m['path']} does not exist.",
        [Evidence(f.spawn_source, f.spawn_error)],
        f"Create {m['path']} (KEY=VALUE lines), or point `{field}` in the manifest at the file"
        f" that holds them (it is read at every start). Then {c.restart_hint()}.",
        specificity=Specificity.PLATFORM,
    )


def _mount_mismatch(c: Clues) -> Finding | None:
    f = c.facts
    m = _MOUNT_TYPE.search(f.spawn_error)
    if m is not None:
        evidence = Evidence(f.spawn_source, f.spawn_error)
    elif (said := platform_said(c, _MOUNT_TYPE)) is not None:
        m, evidence = said.match, said.evidence
    else:
        return None
    target = m["dst"]
    return finding(
        Category.CONFIG_MISSING,
        f"The runtime could not start {c.who}: it could not mount a volume at {target}, which"
        " is a file on one side and a directory on the other.",
        [evidence],
        f"Check the volumeMount at {target}: with a `subPath`, its ConfigMap or Secret must have"
        " that key (`kubectl get configmap NAME -o yaml`; a missing key is mounted as an empty"
        " directory) and the mountPath must be the file's own path; a hostPath must exist on"
        f" the node as the same type (file or directory) as {target} in the image. Then"
        f" {c.restart_hint()}.",
        specificity=Specificity.PLATFORM,
    )
