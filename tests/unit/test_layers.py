"""Dependency direction between the package's layers (DESIGN: each imports only leftwards):

kernels · errors -> nmodl -> files, resources -> config -> model -> parallel -> io -> engine -> api -> hpc
  -> cli
postprocess (brainsim.postprocess): errors, files and io only; cli imports it
twin (the patient twin: observations, fit, forks): above api and hpc, may import postprocess; below cli
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = [
    "kernels", "errors", "nmodl", "files", "resources", "config", "model", "parallel", "io", "engine", "api",
    "hpc", "postprocess", "twin", "cli",
]  # fmt: skip
ALLOWED = {layer: set(ORDER[: i + 1]) for i, layer in enumerate(ORDER)}
ALLOWED["errors"] = {"errors"}
ALLOWED["kernels"] = {"kernels"}
ALLOWED["files"] = {"errors", "files"}
ALLOWED["postprocess"] = {"errors", "files", "io", "postprocess"}
PACKAGES = {"kernels": "kernels", "postprocess": "postprocess"}  # layers that are folders of their own


def layer_files():
    for path in sorted((ROOT / "brainsim").rglob("*.py")):
        part = path.relative_to(ROOT / "brainsim").parts[0].removesuffix(".py")
        if part in ORDER:
            yield part, path
    for layer, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield layer, path


def brainsim_imports(path, package):
    """The brainsim layers a module imports (absolute 'brainsim.x' and relative imports resolved)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
            else:
                target = node.module.split(".")
            # `from brainsim import x` and `from .. import x` import the layer x
            names = [target] if len(target) > 1 else [[*target, a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for name in names:
            if name and name[0] == "brainsim" and len(name) > 1:
                out.add(name[1])
    return out - {"__init__", "__version__"}


@pytest.mark.parametrize("layer,path", list(layer_files()), ids=lambda v: str(v).split("main/")[-1])
def test_imports_only_lower_layers(layer, path):
    if layer in PACKAGES:
        package = ["brainsim", layer, *path.relative_to(ROOT / PACKAGES[layer]).parts[:-1]]
    else:
        package = ["brainsim", *path.relative_to(ROOT / "brainsim").parts[:-1]]
    used = brainsim_imports(path, package) & set(ORDER)
    assert used <= ALLOWED[layer], f"{layer} imports {sorted(used - ALLOWED[layer])}"
