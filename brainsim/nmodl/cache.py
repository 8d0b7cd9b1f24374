"""Translated modules on disk, keyed by content: <cache>/<sha256 of the translator, the kernels its modules
inline and the .mod text>.py.

The folder is $BRAINSIM_CACHE/nmodl, else ~/.cache/brainsim/nmodl. A module is written once (atomically)
and imported from its file, so numba's cache=True keeps the compiled kernels beside it; loading the
same text again, in this process or another, translates nothing (nor imports sympy). Processes that
start together on a cold cache (MPI ranks, Dask workers) may each translate a file; each writes a
temporary file and renames it over the target, so every reader sees a whole module.
"""

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from ..errors import MechanismError

VERSION = "14"
"""The translator's version: part of every cache key, raised whenever the generated code changes."""

_LOADED = {}  # cached module file -> module


def cache_dir():
    """The folder of translated modules."""
    root = os.environ.get("BRAINSIM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "brainsim") / "nmodl"


@functools.cache
def kernel_digest(*modules):
    """sha256 of the source files of the given kernel modules (read once per process). Generated code that
    inlines their kernels carries it in its cache key: numba's own cache is keyed by the generated file
    alone, so an edited kernel would otherwise leave a stale compiled loop in use."""
    h = hashlib.sha256()
    for m in modules:
        h.update(Path(m.__file__).read_bytes())
    return h.hexdigest()


@functools.cache
def _translator_digest():
    """sha256 of the translator's own source files, read without importing them (sympy stays unloaded): a
    changed translator makes new keys even where VERSION was not raised."""
    source = b"".join((Path(__file__).parent / f).read_bytes() for f in ("codegen.py", "symbolic.py"))
    return hashlib.sha256(source).hexdigest()


def digest(text):
    """The cache key of a .mod file's text (with the translator's version and source, and the kernels its
    module uses)."""
    from ..kernels import ions, mathfn

    kernels = kernel_digest(sys.modules["brainsim.kernels"], ions, mathfn)
    key = f"brainsim.nmodl {VERSION} {_translator_digest()} {kernels}\n{text}"
    return hashlib.sha256(key.encode()).hexdigest()


def _read(mod_path):
    try:
        return Path(mod_path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise MechanismError(f"cannot read the .mod file: {e}", str(mod_path)) from None


def translate(mod_path, text=None):
    """Source text of the kernel module for the .mod file at mod_path (MechanismError where it is outside
    the supported subset)."""
    from . import codegen, symbolic  # sympy and NMODL load only where a text is not cached yet

    text = _read(mod_path) if text is None else text
    mech = symbolic.read(str(mod_path), text)
    return codegen.generate(mech, digest(text), VERSION)


def cached_path(mod_path, folder=None):
    """The cached module file of a .mod file, translated and written if absent."""
    text = _read(mod_path)
    key = digest(text)
    folder = Path(folder) if folder is not None else cache_dir()
    target = folder / f"{key}.py"
    if not target.exists():
        write_module(target, translate(mod_path, text))
    return target, key


def write_module(target, source):
    """Write a module's source to target atomically (a temporary file renamed over it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem[:16]}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    os.replace(tmp, target)


def load(mod_path, folder=None):
    """The kernel module of a .mod file: imported from the cache (translated first where not cached)."""
    target, key = cached_path(mod_path, folder)
    return import_module(target, f"brainsim_nmodl_{key[:32]}")


def load_generated(kind, text):
    """The module of generated source text (engine.stepper's `step`, engine.implicit_form's `implicit`),
    kept in the cache under the sha256 of its text: written on first use, imported once per process."""
    key = hashlib.sha256(text.encode()).hexdigest()
    target = cache_dir() / f"{kind}_{key}.py"
    if not target.exists():
        write_module(target, text)
    return import_module(target, f"brainsim_{kind}_{key[:32]}")


def import_module(target, name):
    """The module of the file target, imported once per process under name."""
    if target in _LOADED:
        return _LOADED[target]
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _LOADED[target] = module
    return module
