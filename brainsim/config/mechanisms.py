"""The mechanisms a config may use: the built-in catalogue (the .mod files of brainsim/mechanisms/,
brainsim.nmodl.builtin.CATALOGUE) and the NMODL modules of its `mechanisms.paths`, keyed by their SUFFIX
or POINT_PROCESS name. Both are translated by brainsim.nmodl: one way to define a mechanism.

Every process that builds a model from the config (each MPI rank, each Dask worker) loads the modules
itself, from the translated-module cache of brainsim.nmodl (written atomically, keyed by content).

Order (the order of a cell group's blocks, whose `current` kernels run in turn, every `rates` after
every `current`): the first-come topological order of these rules, ties going to the built-ins in
catalogue order and then to the loaded modules in the order of mechanisms.paths (a folder's .mod files
by name):
- the built-ins keep their catalogue order (written for it: `sk` reads cai only in `rates`);
- a writer of cai (it stores a state in the row in `current`) runs before every reader of cai, where
  one of the two is loaded;
- a writer of ica (each adds its current in `current`) runs before every reader of ica, where one of
  the two is loaded, unless that contradicts the rules above (a module that reads cai and writes ica
  beside `cadyn`): readers of ica use it in `rates`, after every `current`.
Writers of one row are not ordered by it among themselves. With the L5PC's twelve files: ... calva,
Ca_HVA, Ca_LVAst, CaDynamics_E2, sk, cadyn, Ih, ..., SK_E2, SKv3_1.
"""

from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError, MechanismError
from ..nmodl import cache
from ..nmodl.builtin import CATALOGUE, FOLDER, source

__all__ = ["BUILT_IN", "CATALOGUE", "Mechanisms", "from_section"]

ALLOWED_PATH = "a folder of .mod files or a .mod file (relative to the config file's folder)"


class Mechanisms(Mapping):
    """name -> kernel module (the interface of kernels/MECHANISMS.md), iterated in block order.

    files: [(.mod file, key path of the config entry that named it)]. A name given twice (a built-in's,
    or another file's) or a file the translator refuses is a ConfigError at that key path."""

    def __init__(self, files=()):
        self.files = tuple((str(file), path) for file, path in files)
        modules, origin, loaded = dict(CATALOGUE), {}, []
        for name in CATALOGUE:
            origin[name] = f"the built-in mechanism {source(name).relative_to(FOLDER.parents[1])}"
        for file, path in self.files:
            module, digest = _load(file, path)
            name = module.NAME
            if name in modules:
                raise ConfigError(
                    path,
                    file,
                    "a .mod file whose SUFFIX / POINT_PROCESS name no other mechanism has",
                    detail=f"{file} names its mechanism '{name}', as does {origin[name]}",
                )
            modules[name], origin[name] = module, file
            loaded.append((name, digest))
        self.loaded = tuple(loaded)
        """(name, content digest) of every loaded module, in the order given."""
        self.origin = origin
        """name -> where it comes from (a built-in module or a .mod file)."""
        self._order = _block_order(modules, {name for name, _ in loaded})
        self._modules = modules

    def __getitem__(self, name):
        return self._modules[name]

    def __iter__(self):
        return iter(self._order)

    def __len__(self):
        return len(self._modules)

    def __reduce__(self):  # a copy in another process loads the modules itself
        return Mechanisms, (self.files,)

    def of_kind(self, kind, events=False):
        """Sorted names of the density or point mechanisms; events: only those that receive events (define
        event_scale: the synapses; a loaded POINT_PROCESS has no NET_RECEIVE, so none)."""
        return sorted(
            name
            for name, module in self._modules.items()
            if module.KIND == kind and (not events or hasattr(module, "event_scale"))
        )

    def param_names(self, name):
        """The parameter names of a mechanism, in its column order."""
        return [p[0] for p in self._modules[name].PARAMS]

    def cai_writer(self, names):
        """Of the mechanisms `names`, the first in block order that keeps cai as a state (what a probe of
        `cai` records); 'cadyn' when none does."""
        for name in self._order:
            module = self._modules[name]
            if name in names and "cai" in module.ION_WRITES and "cai" in module.STATES:
                return name
        return "cadyn"


def from_section(section, folder, path="mechanisms"):
    """The Mechanisms of a resolved `mechanisms` section (`paths`: folders and .mod files, relative ones
    taken from folder)."""
    if not section or not section.get("paths"):
        return BUILT_IN
    files, seen = [], {}
    for i, given in enumerate(section["paths"]):
        where = f"{path}.paths[{i}]"
        item = Path(given)
        item = item if item.is_absolute() else Path(folder) / item
        if item.is_dir():
            found = sorted(item.glob("*.mod"))
            if not found:
                raise ConfigError(where, given, ALLOWED_PATH, detail=f"{item} holds no .mod file")
        elif item.is_file():
            if item.suffix != ".mod":
                raise ConfigError(where, given, ALLOWED_PATH, detail=f"{item} is not a .mod file")
            found = [item]
        else:
            raise ConfigError(where, given, ALLOWED_PATH, detail=f"{item} does not exist")
        for file in found:
            key = file.resolve()
            if key in seen:
                raise ConfigError(where, given, ALLOWED_PATH + ", each named once",
                                  detail=f"{file} is also in {seen[key]}")  # fmt: skip
            seen[key] = where
            files.append((str(file), where))
    return Mechanisms(files)


def _load(file, path):
    """(module, content digest) of a .mod file; a translation error is a ConfigError at path."""
    try:
        module = cache.load(file)
        return module, cache.digest(Path(file).read_text())
    except MechanismError as e:
        raise ConfigError(path, file, "a .mod file within the translator's subset (brainsim.nmodl)",
                          detail=str(e)) from None  # fmt: skip


def _block_order(modules, loaded):
    """Names of modules in block order (see the module's doc); loaded: the names of loaded modules."""
    names = list(modules)
    rank = {name: i for i, name in enumerate(names)}
    after = {name: set() for name in names}  # name -> names that must come before it

    def edges(row):
        writers = [n for n in names if row in modules[n].ION_WRITES]
        readers = [n for n in names if row in modules[n].ION_READS and row not in modules[n].ION_WRITES]
        return [(w, r) for w in writers for r in readers if w in loaded or r in loaded]

    built_in = [n for n in names if n not in loaded]
    for first, then in zip(built_in, built_in[1:]):
        after[then].add(first)
    for w, r in edges("cai"):
        after[r].add(w)
    for w, r in edges("ica"):
        if not _reaches(after, w, r):  # r must not already come before w
            after[r].add(w)
    order, placed = [], set()
    while len(order) < len(names):
        name = min((n for n in names if n not in placed and after[n] <= placed), key=rank.__getitem__)
        order.append(name)
        placed.add(name)
    return tuple(order)


def _reaches(after, start, target):
    """Whether target must come before start (following the `after` sets back from start)."""
    stack, seen = [start], set()
    while stack:
        name = stack.pop()
        if name == target:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(after[name])
    return False


BUILT_IN = Mechanisms()
"""The built-in catalogue alone: the mechanisms of a config without `mechanisms.paths`."""
