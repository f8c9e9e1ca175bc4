"""The documentation works.

- Every ```python block in ``docs/**/*.md`` runs: one test per page, the blocks of a page in
  order in one namespace (as a reader pastes them into one session). A block fenced as
  ```{.python .no-run} is shown but not run (see docs/conventions.md).
- Every page of ``docs/`` is in the navigation, every public name has an API entry, and the
  figure scripts in ``docs/figures/`` produce their pictures.
- The site builds with ``mkdocs build --strict`` (skipped when mkdocs is not installed).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
# Pages whose examples run: the site's pages and the README's quick start.
EXAMPLE_PAGES = PAGES + [ROOT / "README.md"]
FIGURE_SCRIPTS = sorted(p for p in (DOCS / "figures").glob("*.py") if not p.name.startswith("_"))

# An opening or closing fence: ``` or ~~~ (3 or more), possibly indented (admonitions, lists).
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_PYTHON_LANGS = {"python", "py", "python3"}
# What may follow the language in a superfences info string: key="value" options (title, hl_lines...).
_OPTIONS = re.compile(r'^(\s+[\w-]+="[^"]*")*\s*$')


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # 1-based line number of the first line of code
    info: str  # the info string after the fence
    code: str

    @property
    def classes(self) -> list[str]:
        """The language and classes: ``python`` or, in the ``{.python .no-run}`` form, each class."""
        info = self.info.strip()
        if info.startswith("{") and info.endswith("}"):
            return [tok[1:] for tok in info[1:-1].split() if tok.startswith(".")]
        return info.split()[:1]

    @property
    def is_python(self) -> bool:
        return bool(self.classes) and self.classes[0] in _PYTHON_LANGS

    @property
    def runs(self) -> bool:
        return self.is_python and "no-run" not in self.classes[1:]


def _where(page: Path) -> str:
    """The page's path for messages: relative to the repository when inside it."""
    try:
        return str(page.relative_to(ROOT))
    except ValueError:
        return str(page)


def fenced_blocks(page: Path) -> list[Block]:
    """All fenced code blocks of a Markdown page, with their code de-indented."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"]
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (closing and not closing["info"] and closing["fence"][0] == fence[0]
                    and len(closing["fence"]) >= len(fence)):
                break
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        else:
            raise AssertionError(f"{_where(page)}:{i + 1}: fence {fence!r} is never closed")
        blocks.append(Block(page, i + 2, info, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def malformed_fence(block: Block) -> str | None:
    """Why an info string would not render as the code block its author meant, or None.

    ``python no-run`` (a bare word after the language) is not a valid fence for
    pymdownx.superfences: the block would be printed as raw text. The opt-out is
    ``{.python .no-run}``.
    """
    info = block.info.strip()
    if not info or info.startswith("{"):
        return None
    language, _, rest = info.partition(" ")
    if rest and not _OPTIONS.match(" " + rest):
        return (f"{_where(block.page)}:{block.line - 1}: fence info {info!r} is not valid for "
                f"superfences (it renders as raw text); to skip running a block write "
                "```{.python .no-run}")
    return None


def run_page(page: Path) -> int:
    """Run the runnable Python blocks of ``page`` in order, in one namespace; return how many ran.

    Each block is compiled with the page's file name and its real line numbers, so a failing
    example points at the Markdown line.
    """
    namespace: dict = {"__name__": "__main__"}
    ran = 0
    for block in fenced_blocks(page):
        if not block.runs:
            continue
        source = "\n" * (block.line - 1) + block.code
        exec(compile(source, str(page), "exec"), namespace)  # noqa: S102 - running our own docs
        ran += 1
    return ran


# ----------------------------------------------------------------------------------------------
# The examples
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLE_PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    problems = [why for why in map(malformed_fence, fenced_blocks(page)) if why]
    assert not problems, "\n".join(problems)
    if not any(block.runs for block in fenced_blocks(page)):
        return
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        assert run_page(page) > 0
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


def test_block_parser_on_a_known_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```python\nx = 1\n```\n\n!!! note\n    ```python\n    y = x + 1\n    ```\n\n"
        "```{.python .no-run}\nraise SystemExit\n```\n\n```bash\nexit 1\n```\n"
        '```python title="t.py"\nz = y * 10\n```\n',
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [b.runs for b in blocks] == [True, True, False, False, True]
    assert blocks[1].code == "y = x + 1\n" and blocks[1].line == 9
    assert not any(malformed_fence(b) for b in blocks)
    assert run_page(page) == 3
    bad = tmp_path / "bad.md"
    bad.write_text("```python no-run\nx = 1\n```\n", encoding="utf-8")
    assert "no-run" in malformed_fence(fenced_blocks(bad)[0])


def test_failing_example_points_at_its_markdown_line(tmp_path):
    page = tmp_path / "broken.md"
    page.write_text("# Broken\n\ntext\n\n```python\na = 1\nb = a / 0\n```\n", encoding="utf-8")
    with pytest.raises(ZeroDivisionError) as info:
        run_page(page)
    last = info.traceback[-1]
    assert Path(str(last.path)) == page and last.lineno + 1 == 7


# ----------------------------------------------------------------------------------------------
# Structure: navigation and API coverage
# ----------------------------------------------------------------------------------------------
def _nav_pages(entries) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += _nav_pages(value)
        elif isinstance(value, str) and not value.startswith(("http://", "https://")):
            pages.append(value)
    return pages


def _config() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_every_page_is_in_the_navigation():
    nav = set(_nav_pages(_config()["nav"]))
    pages = {str(p.relative_to(DOCS)).replace(os.sep, "/") for p in PAGES}
    assert pages - nav == set(), "pages missing from mkdocs.yml nav"
    assert nav - pages == set(), "nav entries without a page"


def _api_entries() -> set[str]:
    entries: set[str] = set()
    for page in (DOCS / "api").glob("*.md"):
        entries |= set(re.findall(r"^:::\s*(otmetrics[\w.]*)", page.read_text(encoding="utf-8"), re.M))
    return entries


def test_every_public_name_has_an_api_entry():
    import otmetrics

    flat = {entry.split(".")[1] for entry in _api_entries() if entry.count(".") >= 1}
    missing = sorted(set(otmetrics.__all__) - flat)
    assert not missing, f"public names without a '::: otmetrics.<name>' entry in docs/api/: {missing}"


@pytest.mark.parametrize("module", ["testing", "critic"])
def test_every_name_of_a_public_submodule_has_an_api_entry(module):
    """``otmetrics.testing`` and ``otmetrics.critic`` are documented name by name (once they exist)."""
    if importlib.util.find_spec(f"otmetrics.{module}") is None:
        pytest.skip(f"otmetrics.{module} does not exist yet")
    submodule = importlib.import_module(f"otmetrics.{module}")
    names = set(getattr(submodule, "__all__", []))
    documented = {entry.rsplit(".", 1)[-1] for entry in _api_entries() if entry.startswith(f"otmetrics.{module}.")}
    assert not names - documented, f"otmetrics.{module} names without an API entry: {sorted(names - documented)}"


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", FIGURE_SCRIPTS, ids=[p.stem for p in FIGURE_SCRIPTS])
def test_figure_script_draws_its_pictures(script, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    spec = importlib.util.spec_from_file_location(f"_docs_figure_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # scripts whose pictures take long to draw accept quick=True: short settings, same code path
    quick = "quick" in inspect.signature(module.main).parameters
    written = module.main(tmp_path, quick=True) if quick else module.main(tmp_path)
    assert written, f"{script.name} wrote nothing"
    for path in written:
        path = Path(path)
        assert path.parent == tmp_path and path.suffix == ".png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        committed = DOCS / "img" / path.name
        assert committed.exists(), f"{committed.relative_to(ROOT)} is not checked in: run {script.name}"
        assert committed.stat().st_size < 250_000, f"{committed.name}: keep documentation pictures small"


# ----------------------------------------------------------------------------------------------
# The strict build
# ----------------------------------------------------------------------------------------------
def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"{module} is not installed")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").exists()


# ----------------------------------------------------------------------------------------------
# The docstring converter used by the API pages (docs/_ext/rst_docstrings.py)
# ----------------------------------------------------------------------------------------------
def test_numpydoc_rst_becomes_markdown():
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("_rst_docstrings", DOCS / "_ext" / "rst_docstrings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = (
        "Solve it.\n\n.. math::\n\n    a = 1\n\n    b = 2\n\nSee :func:`~otmetrics.transport.certificate.certify`, "
        ":class:`otmetrics.PointCloud` and :math:`x_i`.\n\nParameters\n----------\n"
        "cost : array, shape ``(n, m)``\n    The ``cost``.\n\n    .. math:: c = d^p\n\n"
        "References\n----------\n.. [1] Peyre and Cuturi (2019).\n"
    )
    expected = (
        "Solve it.\n\n$$\na = 1\n$$\n\n$$\nb = 2\n$$\n\nSee `certify`, `otmetrics.PointCloud` and $x_i$.\n\n"
        "Parameters\n----------\ncost : array, shape (n, m)\n    The ``cost``.\n\n    $$\n    c = d^p\n    $$\n\n"
        "References\n----------\n[1] Peyre and Cuturi (2019).\n"
    )
    assert module.rst_to_markdown(source) == expected
    # roles inside a type, list items with numpydoc's 2-space continuation, a formula split at "- "
    assert module.rst_to_markdown("Returns\n-------\nres : :class:`~otmetrics.OTResult`\n") == (
        "Returns\n-------\nres : OTResult\n")
    assert module.rst_to_markdown("- item\n  continued\n\n  .. math:: x\n") == (
        "- item\n    continued\n\n    $$\n    x\n    $$\n")
    assert module.rst_to_markdown("see :math:`a + b\n- c`.") == "see $a + b - c$."
