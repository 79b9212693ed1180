"""Layering: no module of embedkit imports from a layer above its own (lazy imports inside
functions included). Same-layer imports are allowed (e.g. Embeddings.to_index and
VectorIndex.to_embeddings, the two halves of the result type).
"""

from __future__ import annotations

import ast
from pathlib import Path

import embedkit

PKG = Path(embedkit.__file__).parent

# lowest first; a module's layer is that of the longest matching prefix
LAYERS = [
    ["errors", "_version"],
    ["_validation", "_device", "_io", "_files", "_arrays", "_knn", "distributed"],
    ["embeddings", "index"],
    ["data", "store"],
    ["evaluate", "plot"],
    ["trainers"],
    ["serve"],
    ["cli"],
    ["__init__", "__main__"],
]


# names embedkit/__init__.py re-exports eagerly -> the module defining them
_TOP_NAMES = {"__version__": "_version", "Embeddings": "embeddings", "EmbedkitError": "errors", "InputError": "errors"}


def _layer(dotted: str) -> int:
    parts = dotted.split(".")
    for n, names in enumerate(LAYERS):
        if parts[0] in names:
            return n
    raise AssertionError(f"module {dotted!r} is in no layer: add it to LAYERS in tests/test_layers.py")


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        yield ".".join(rel.parts), path


def _imports(dotted: str, path: Path):
    """(line, imported module relative to embedkit) for every import of an embedkit module."""
    here = dotted.split(".")[:-1]  # the package holding this module (for __init__: the package itself)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("embedkit."):
                target = node.module[len("embedkit."):]
            elif node.module == "embedkit":
                target = ""
            else:
                continue
            if not target:  # "from embedkit import x": a submodule, or a name the package re-exports
                for alias in node.names:
                    sub = (PKG / alias.name).is_dir() or (PKG / f"{alias.name}.py").is_file()
                    yield node.lineno, alias.name if sub else _TOP_NAMES.get(alias.name, "__init__")
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("embedkit."):
                    yield node.lineno, alias.name[len("embedkit."):]
                elif alias.name == "embedkit":  # the whole package: its __init__ (and what it loads lazily)
                    yield node.lineno, "__init__"
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("embedkit."):
                yield node.lineno, arg.value[len("embedkit."):]


def test_every_module_has_a_layer():
    for dotted, _ in _modules():
        _layer(dotted)


def test_no_module_imports_from_a_layer_above_it():
    bad = []
    for dotted, path in _modules():
        mine = _layer(dotted)
        for line, target in _imports(dotted, path):
            if target and _layer(target) > mine:
                bad.append(f"{path.relative_to(PKG.parent)}:{line}: {dotted} (layer {mine}) imports {target} "
                           f"(layer {_layer(target)})")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_upward_imports(tmp_path):
    # a module of the index layer that imported the service would be reported
    fake = tmp_path / "index" / "x.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from ..serve import app\n    import embedkit\n    from embedkit import Store\n"
                    "    from embedkit import __version__\n")
    assert sorted(_imports("index.x", fake)) == [(2, "serve"), (3, "__init__"), (4, "__init__"), (5, "_version")]
    assert _layer("serve") > _layer("index.x") and _layer("__init__") > _layer("index.x")
