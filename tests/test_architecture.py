"""The architecture of docs/architecture.md, checked on the source: which way imports go, no private
name across module borders, one concept per module (a size limit as a proxy).

Imports are read with ``ast`` from every module of the package (top-level and function-level
imports alike), relative imports resolved to absolute module names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "otmetrics"

#: Where each part of the package may import from (besides itself, the standard library and
#: third-party packages). The two wings never import each other; the critic validates against the
#: exact primal, so it may use the transport wing.
ALLOWED = {
    "otmetrics._core": {"otmetrics._core"},
    "otmetrics.transport": {"otmetrics._core", "otmetrics.transport"},
    "otmetrics.generative": {"otmetrics._core", "otmetrics.generative"},
    "otmetrics.critic": {"otmetrics._core", "otmetrics.critic", "otmetrics.transport"},
    "otmetrics.testing": {"otmetrics._core", "otmetrics.testing", "otmetrics.transport"},
    "otmetrics.divergences": {"otmetrics._core"},
}
#: The modules that sit on top (the flat API, the command line, the demo) may import anything.
TOP = {"otmetrics", "otmetrics.__main__", "otmetrics.cli", "otmetrics.demo"}
#: Packages whose every module sits on top (the command line is a package of several modules).
TOP_PACKAGES = ("otmetrics.cli.",)

MAX_LINES = 500


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


MODULES = dict(_modules())


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def _imports(module: str, path: Path):
    """``(imported module, imported name or None, line)`` for every import in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _package_of(module, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                yield source, alias.name, node.lineno


def _part(module: str) -> str:
    for prefix in sorted(ALLOWED, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_downwards(module):
    if module in TOP or module.startswith(TOP_PACKAGES):
        return
    allowed = ALLOWED[_part(module)]
    for source, name, line in _imports(module, MODULES[module]):
        if not source.startswith("otmetrics"):
            continue
        target = f"{source}.{name}" if name and f"{source}.{name}" in MODULES else source
        assert _part(target) in allowed, f"{module}:{line} imports {target}, outside {sorted(allowed)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_module_border(module):
    """What two modules share is a named (public) function; only the private core may share privately."""
    for source, name, line in _imports(module, MODULES[module]):
        if not source.startswith("otmetrics") or name is None or not name.startswith("_"):
            continue
        if name.startswith("__") and name.endswith("__"):  # __version__ and the like are public
            continue
        if source == module:
            continue
        inside_core = module.startswith("otmetrics._core") and source.startswith("otmetrics._core")
        assert inside_core, f"{module}:{line} imports the private name {name} from {source}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines (one concept per module, at most {MAX_LINES})"


def test_every_package_says_what_it_holds():
    for module, path in MODULES.items():
        if path.name == "__init__.py":
            assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), module


def test_the_architecture_page_names_every_module():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module, path in MODULES.items():
        if module in ("otmetrics", "otmetrics.__main__") or path.name == "__init__.py":
            continue
        leaf = path.name
        assert leaf in page, f"docs/architecture.md does not mention {module} ({leaf})"
