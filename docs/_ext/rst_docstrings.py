"""A griffe extension: the reStructuredText bits of numpydoc docstrings, as Markdown.

otmetrics writes numpydoc docstrings (they read well in ``help()`` and IPython), which use a few
reStructuredText constructs that mkdocstrings would print verbatim. Before a docstring is
parsed for the API pages, this rewrites:

- ``.. math::`` blocks          -> ``$$ ... $$`` (typeset by MathJax through pymdownx.arithmatex);
- ``:math:`x```                 -> ``$x$``;
- ``:func:`~pkg.name```, ``:class:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``, ``:exc:``,
  ``:obj:``                     -> ``name`` as inline code (the ``~`` form keeps the last part);
- ``.. [1] Author, Title``      -> ``[1] Author, Title`` (numbered references);
- ``.. note::`` / ``.. warning::`` blocks -> admonitions; ``.. code-block:: lang`` -> a fenced block;
- the types of numpydoc's ``name : type`` lines lose their backquotes (the API tables print
  types verbatim, so ````(n, m)```` would show its quotes);
- list items continued with numpydoc's short indentation (2 spaces after ``- ``, 3 after
  ``1. ``) are re-indented to the 4 spaces Python-Markdown needs, so that a formula or a second
  paragraph stays inside its item.

The source is untouched; only what the documentation site shows changes. Loaded from
``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_CITATION = re.compile(r"^(\s*)\.\. \[([\w-]+)\]", re.M)
_DIRECTIVE = re.compile(r"^(\s*)\.\. (math|note|warning|seealso|code-block|code|sourcecode)::[ \t]*(.*)$")


def _role(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    text = target.split(".")[-1] if short else target
    if "<" in text and text.endswith(">"):  # :func:`label <target>`
        text = text.split("<")[0].strip()
    return f"`{text}`"


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _directives(text: str) -> str:
    """Rewrite indented RST directive blocks (math, note, warning, seealso, code-block)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, kind, argument = match.group(1), match.group(2), match.group(3).strip()
        base = len(indent)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or _indent_of(lines[j]) > base):
            body.append(lines[j])
            j += 1
        while body and not body[-1].strip():  # trailing blank lines belong to what follows
            body.pop()
            j -= 1
        content = list(body)
        depth = min((_indent_of(line) for line in content if line.strip()), default=base)
        content = [line[depth:] if line.strip() else "" for line in content]
        while content and not content[0]:
            content.pop(0)
        if kind in ("code-block", "code", "sourcecode"):
            language = argument or "python"
            out += [f"{indent}```{language}", *[f"{indent}{line}" if line else "" for line in content],
                    f"{indent}```"]
        elif kind == "math":
            # Sphinx renders blank-line separated paragraphs of a math block as separate equations
            formula = "\n".join(([argument] if argument else []) + content).strip()
            for k, equation in enumerate(re.split(r"\n\s*\n", formula)):
                out += ([""] if k else []) + [f"{indent}$$", *[f"{indent}{line}" for line in equation.split("\n")],
                                              f"{indent}$$"]
        else:
            title = {"note": "note", "warning": "warning", "seealso": "info"}[kind]
            label = ' "See also"' if kind == "seealso" else ""
            out.append(f"{indent}!!! {title}{label}")
            first = [argument] if argument else []
            out += [f"{indent}    {line}" if line else "" for line in first + content]
        i = j
    return "\n".join(out)


_TYPED_SECTIONS = {"parameters", "other parameters", "returns", "yields", "receives", "raises", "warns",
                   "attributes"}
_UNDERLINE = re.compile(r"\s*-{3,}\s*")


def _plain_types(text: str) -> str:
    """Remove backquotes from the type part of ``name : type`` lines of the typed sections."""
    lines = text.split("\n")
    section, base = None, 0
    for k, line in enumerate(lines):
        following = lines[k + 1] if k + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.fullmatch(following):
            section, base = line.strip().lower(), _indent_of(line)
            continue
        if section not in _TYPED_SECTIONS or not line.strip() or _UNDERLINE.fullmatch(line):
            continue
        if _indent_of(line) != base:  # a description line
            continue
        if " : " in line:
            name, _, kind = line.partition(" : ")
            lines[k] = f"{name} : {kind.replace('`', '')}"
        elif section not in ("parameters", "other parameters", "attributes"):
            lines[k] = line.replace("`", "")  # Returns/Raises/...: a bare type
    return "\n".join(lines)


_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+\.)\s+\S")


def _list_items(text: str) -> str:
    """Re-indent the continuation lines of list items to 4 columns past the marker's indent."""
    lines = text.split("\n")
    k = 0
    while k < len(lines):
        item = _LIST_ITEM.match(lines[k])
        if not item:
            k += 1
            continue
        indent, offset = len(item.group(1)), len(item.group(2)) + 1
        shift = 4 - offset
        j = k + 1
        body = []
        while j < len(lines) and (not lines[j].strip() or _indent_of(lines[j]) > indent):
            body.append(j)
            j += 1
        while body and not lines[body[-1]].strip():
            body.pop()
        first = next((b for b in body if lines[b].strip()), None)
        if shift > 0 and first is not None and _indent_of(lines[first]) == indent + offset:
            for b in body:
                if lines[b].strip():
                    lines[b] = " " * shift + lines[b]
        k += 1  # nested items are visited (and shifted) in turn
    return "\n".join(lines)


def _join_split_inline_math(text: str) -> str:
    """Join a line to the previous one when it continues an open ``$...$`` and starts like a list
    item (``- k(x, y)``): Markdown would read it as a nested bullet and break the formula."""
    out: list[str] = []
    for line in text.split("\n"):
        if out and _LIST_ITEM.match(line) and out[-1].replace("$$", "").count("$") % 2 == 1:
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


def rst_to_markdown(text: str) -> str:
    """The Markdown form of the RST constructs used in numpydoc docstrings (see module doc)."""
    text = _ROLE.sub(_role, text)
    text = _plain_types(text)
    text = _MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
    text = _join_split_inline_math(text)
    text = _list_items(text)
    text = _directives(text)
    text = _CITATION.sub(lambda m: f"{m.group(1)}[{m.group(2)}]", text)
    return text


class RstDocstrings(griffe.Extension):
    """Rewrite each docstring once, when its object is created (before it is parsed)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
