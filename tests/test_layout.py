"""The house's layout stays as docs/architecture.md draws it.

Wings by stage under src/ledger/, each importing only the wings below it; no import
circles; no private name (`_x`) imported from another module; function-local imports
only in cli.py (where they buy start-up time); no module over 800 lines; every wing
states its contract in its docstring; the built wheel carries every subpackage, the
grammar and the built-in export profiles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "ledger"

# A wing may import wings of a lower rank only; wings of the same rank never import each other.
RANK = {"core": 0, "lang": 1, "inputs": 1, "sample": 1, "evaluate": 2, "outputs": 3,
        "period": 4, "review": 5, "desk": 6, "cli": 7, "__main__": 8}
MAX_LINES = 800


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imports(path: Path, module: str):
    """(imported module, names, line, top level?) for every import of a ledger module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(id(n) for n in tree.body)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "ledger":
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
                yield target, alias.name, node.lineno, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ledger":
                    yield alias.name, alias.name, node.lineno, id(node) in top


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {t for t, _, _, top in imports(p, m) if top and t in mods and t != m} for m, p in mods.items()}


def test_wings_import_only_wings_below_them():
    upward = []
    for module, path in modules().items():
        here = wing(module)
        for target, _, line, _ in imports(path, module):
            there = wing(target)
            if here is None or there is None or here == there:
                continue
            if RANK[there] >= RANK[here]:
                upward.append(f"{path.relative_to(REPO)}:{line}: {here} imports {there}")
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    g = graph()
    circles, state = [], {}

    def visit(m, stack):
        state[m] = 1
        for t in sorted(g[m]):
            if state.get(t) == 1:
                circles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not circles, "\n".join(circles)


def test_private_names_stay_in_their_module():
    crossing = [f"{p.relative_to(REPO)}:{line}: {name} from {target}"
                for m, p in modules().items() for target, name, line, _ in imports(p, m)
                if name.startswith("_") and not name.startswith("__")]
    assert not crossing, "\n".join(crossing)


def test_function_local_imports_only_in_the_cli():
    local = [f"{p.relative_to(REPO)}:{line}" for m, p in modules().items() if m != "ledger.cli"
             for _, _, line, top in imports(p, m) if not top]
    assert not local, "\n".join(local)


def test_modules_are_small_and_wings_state_their_contract():
    big = [f"{p.relative_to(REPO)}: {n} lines" for p in modules().values()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not big, "\n".join(big)
    for name in RANK:
        init = SRC / name / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert doc and len(doc.splitlines()) >= 3 and "import" in doc.lower(), f"{name}/__init__.py: no contract docstring (what it does and what it may import)"


@pytest.mark.skipif(not (REPO / "pyproject.toml").exists(), reason="needs the source checkout")
def test_the_wheel_carries_every_subpackage_the_grammar_and_the_profiles(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("ledger-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module, path in modules().items():
        assert path.relative_to(SRC.parent).as_posix() in names, module
    assert "ledger/lang/policy.lark" in names
    profiles = {p.name for p in (SRC / "inputs" / "builtin_profiles").glob("*.profile")}
    assert profiles and all(f"ledger/inputs/builtin_profiles/{p}" in names for p in profiles)
    # The review desk's templates and static assets (CSS, script) ship in the package.
    assets = [p.relative_to(SRC.parent).as_posix() for folder in ("templates", "static")
              for p in (SRC / "desk" / folder).iterdir() if p.is_file()]
    assert any(a.endswith(".html") for a in assets) and any(a.endswith(".css") for a in assets)
    assert any(a.endswith(".js") for a in assets)
    assert all(a in names for a in assets), sorted(set(assets) - names)
