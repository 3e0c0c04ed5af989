"""Every environment variable the project reads is described in docs/configuration.md.

The names are found in the source (settings/*.py and pulp_downloads/), so a variable added
later without its line in the docs fails here."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "configuration.md"


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` (or a bare ``environ``)."""
    return ((isinstance(node, ast.Attribute) and node.attr == "environ"
             and isinstance(node.value, ast.Name) and node.value.id == "os")
            or (isinstance(node, ast.Name) and node.id == "environ"))


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def environment_names(source: str) -> set[str]:
    """The variable names ``source`` reads: ``os.environ.get/setdefault/pop("X")``,
    ``os.environ["X"]``, ``"X" in os.environ``, ``os.getenv("X")`` and the settings'
    readers ``env_bool/env_list/env_int/env_float("X", ...)`` (or ``_env_*``); a name given
    by a module-level string constant counts too."""
    tree = ast.parse(source)
    constants = {target.id: node.value.value for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                 and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            callee = _callee(node)
            reads_environ = (isinstance(node.func, ast.Attribute)
                             and _is_environ(node.func.value)
                             and callee in {"get", "setdefault", "pop"})
            if reads_environ or callee == "getenv" or re.fullmatch(r"_?env_[a-z]+", callee):
                found.add(name_of(node.args[0]))
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            found.add(name_of(node.slice))
        elif (isinstance(node, ast.Compare) and len(node.ops) == 1
              and isinstance(node.ops[0], (ast.In, ast.NotIn)) and _is_environ(node.comparators[0])):
            found.add(name_of(node.left))
    return {name for name in found if name}


def sources() -> list[Path]:
    """The settings and the app (its tests excluded)."""
    app = [path for path in (ROOT / "pulp_downloads").rglob("*.py")
           if not {"tests", "__pycache__"} & set(path.parts) and not path.name.startswith("test")]
    return sorted((ROOT / "settings").glob("*.py")) + sorted(app)


def read_variables() -> dict[str, list[str]]:
    """Each variable read, with the files reading it."""
    names: dict[str, list[str]] = {}
    for path in sources():
        for name in environment_names(path.read_text()):
            names.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return names


def test_the_finder_sees_every_way_of_reading_a_variable():
    source = '''
import os
NAMED = "FROM_A_CONSTANT"
os.environ.get("A"); os.environ["B"]; os.getenv("C"); os.environ.setdefault("D", "1")
env_bool("E", False); env_list("F", []); env_int("G", 1); env_float("H", 1.0)
_env_bool("I", True); os.environ.get(NAMED); "J" in os.environ; os.environ.get(variable)
settings.get("NOT_THE_ENVIRONMENT"); os.environ.pop("K", None)
'''
    assert environment_names(source) == {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K",
                                         "FROM_A_CONSTANT"}


def test_every_variable_read_is_in_configuration_md():
    variables = read_variables()
    # The settings alone read more than 20; fewer means the finder stopped seeing them.
    assert len(variables) >= 20, sorted(variables)
    for expected in ("SECRET_KEY", "PULP_DOWNLOADS_ENV_FILE", "PULP_DOWNLOADS_DB_KEY",
                     "PULP_DOWNLOADS_TASK_HEARTBEAT_TIMEOUT", "SERVE_STATIC", "ADMIN_PASSWORD"):
        assert expected in variables, expected
    documented = documented_variables()
    missing = {name: files for name, files in sorted(variables.items()) if name not in documented}
    assert not missing, f"no row of their own in docs/configuration.md: {missing}"


def documented_variables() -> set[str]:
    """The names in the first column of the tables of docs/configuration.md (a row each)."""
    cells = [line.split("|")[1] for line in DOCS.read_text().splitlines()
             if line.startswith("|") and line.count("|") >= 3]
    return {name for cell in cells for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}
