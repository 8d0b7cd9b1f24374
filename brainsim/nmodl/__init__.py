"""NMODL (.mod) mechanisms translated to brainsim's kernel interface (kernels/mechanisms).

`translate(path)` gives the source text of a module with KIND, STATES, PARAMS, ION_READS/ION_WRITES and
numba `rates`/`current` kernels with their NumPy twins; `load(path)` imports it from a content-keyed
disk cache; `describe(folder)` lists a folder's mechanisms (the `brainsim mechanisms` command).
Supported: SUFFIX and POINT_PROCESS; PARAMETER, ASSIGNED, STATE, UNITS factors; PROCEDURE and FUNCTION
(inlined), LOCAL, IF/ELSE; DERIVATIVE blocks solved by cnexp or derivimplicit with every x' linear in x;
USEION reads of reversal potentials (parameters), ica and cai; writes of currents and of cai (a STATE);
NONSPECIFIC_CURRENT. TABLE is ignored (the expressions are evaluated exactly); INITIAL is not used
(brainsim starts every state at its x∞). Anything else is a MechanismError naming the file and line.
"""

from .cache import VERSION, cache_dir, load, translate
from .listing import describe

__all__ = ["VERSION", "cache_dir", "describe", "load", "translate"]
