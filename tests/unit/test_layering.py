"""The habits a reviewer should not have to check: no module imports another module's private names.

A name with a leading underscore is a module's own business; reaching into it from elsewhere makes
two modules one in all but name (the executors once imported five of the runner's private helpers).
Import cycles between packages and the layering (data, backbones and report free of the runner) are
checked by import-linter (``lint-imports``, contracts in pyproject.toml), run by ``make lint``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import transferlab

PACKAGE = Path(transferlab.__file__).parent

# Private names allowed across modules (importer, module, name): none.
KNOWN: set[tuple[str, str, str]] = set()


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports() -> set[tuple[str, str, str]]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        importer = _module(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(importer, path.name == "__init__.py", node)
                if not source.startswith("transferlab") or source == importer:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.add((importer, source, alias.name))
    return found


def test_no_module_imports_another_modules_private_names():
    new = private_imports() - KNOWN
    assert not new, (
        f"Private names imported across modules (make them public, or keep the code in one module): {sorted(new)}"
    )
