"""Rule: missing_module — a module, package, class or shared library is not in the build.

Deterministic: the same build fails the same way every time. The fix is in the build or the
image, not in the running host.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_MISSING = re.compile(
    r"ModuleNotFoundError: No module named '(?P<py>[^']+)'"
    r"|ImportError: (?:No module named (?P<py2>\S+)|cannot import name '(?P<pyname>[^']+)'"
    r"|(?P<pylib>lib[\w.+-]+\.so[\w.]*): cannot open shared object file)"
    r"|No module named (?P<py3>[\w.]+)\s*$"
    r"|(?:java\.lang\.)?(?:ClassNotFoundException|NoClassDefFoundError):? (?P<java>[\w.$/]+)"
    r"|Could not find or load main class (?P<main>\S+)"
    r"|Error: Cannot find module '(?P<node>[^']+)'"
    r"|Cannot find (?:module|package) ['\"](?P<node2>[^'\"]+)['\"]"
    r"|error while loading shared libraries: (?P<lib>[^:]+): cannot open shared object file"
    r"|(?P<lib2>lib[\w.+-]+\.so[\w.]*): cannot open shared object file"
    r"|Error loading shared library (?P<lib3>[^:\s]+): No such file"
    r"|cannot load such file -- (?P<ruby>\S+)"
    r"|Could not find (?P<gem>[\w-]+-[\d.]+) in any of the sources"
    r"|Could not load file or assembly '(?P<dotnet>[^',]+)"
    r"|cannot find package \"(?P<go>[^\"]+)\""
    r"|Library not loaded: (?P<dylib>\S+)"
    # a program's own words for a library it could not load (dlopen failed)
    r"|(?i:could not|couldn't|cannot|can't|failed to|unable to) load (?:the )?"
    r"(?!shared\b)(?P<lib4>[\w.+-]+)"
    r" (?i:shared )?librar(?:y|ies)\b"
    r"|(?i:could not|couldn't|cannot|can't|failed to|unable to) load (?:the )?(?i:shared )?"
    r"librar(?:y|ies):? ['\"]?(?P<lib5>[\w.+/-]+\.(?:so|dll|dylib)[\w.]*)"
)
_FIX = {
    "py": "Add {name} to the requirements and reinstall into the environment the service runs"
    " with (the same virtualenv/interpreter as its command)",
    "java": "Put the jar that provides {name} on the classpath (check the build's dependency"
    " scope and that the fat jar includes it)",
    "node": "Run `npm ci` (or add {name} to package.json dependencies, not devDependencies) in"
    " the directory the service runs from",
    "lib": "Install the package that provides {name} (`apt-file search {name}` names it) or"
    " ship it with the build",
    "ruby": "Add it to the Gemfile and run `bundle install` where the service runs",
    "dotnet": "Publish the app with its dependencies (`dotnet publish`) and deploy the whole"
    " output directory",
    "go": "Run `go mod tidy` and rebuild",
}
_KIND = {
    "py": "py",
    "py2": "py",
    "py3": "py",
    "pyname": "py",
    "pylib": "lib",
    "java": "java",
    "main": "java",
    "node": "node",
    "node2": "node",
    "lib": "lib",
    "lib2": "lib",
    "lib3": "lib",
    "dylib": "lib",
    "lib4": "lib",
    "lib5": "lib",
    "ruby": "ruby",
    "gem": "ruby",
    "dotnet": "dotnet",
    "go": "go",
}


def rule(c: Clues) -> Finding | None:
    found = c.search(_MISSING)
    if found is None:
        return None
    group, name = next((g, v) for g, v in found.match.groupdict().items() if v)
    kind = _KIND[group]
    # a build that lacks one library usually lacks its siblings: name them all (up to 3)
    quoted = [found.line]
    names = [name]
    for line in c.facts.log:
        if len(names) == 3:
            break
        m = _MISSING.search(line.text)
        if m is None or line is found.line:
            continue
        other = next(v for v in m.groupdict().values() if v)
        if other not in names:
            names.append(other)
            quoted.append(line)
    name = ", ".join(names)
    what = "the shared library" if kind == "lib" else "the module"
    if group == "pyname":
        what = "the name"
    elif kind == "java":
        what = "the class"
    return finding(
        Category.MISSING_MODULE,
        f"{c.who} cannot start: {what} {name} is missing from its build or environment.",
        [c.quote(line) for line in sorted(quoted, key=lambda ln: ln.number)],
        _FIX[kind].format(name=name) + f", then {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        at=found.at,
    )
