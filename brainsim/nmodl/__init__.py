"""NMODL (.mod) mechanisms translated to brainsim's kernel interface (kernels/MECHANISMS.md): the only way
to define a mechanism. The built-ins are the .mod files of brainsim/mechanisms/ (builtin.CATALOGUE).

`translate(path)` gives the source text of a module with KIND, STATES, PARAMS, ION_READS/ION_WRITES and
numba `rates`/`current` kernels with their NumPy twins; `load(path)` imports it from a content-keyed
disk cache; `describe(folder)` lists a folder's mechanisms (the `brainsim mechanisms` command).
Supported: SUFFIX and POINT_PROCESS; PARAMETER, ASSIGNED, STATE, UNITS factors; PROCEDURE and FUNCTION
(inlined), LOCAL, IF/ELSE; DERIVATIVE blocks solved by cnexp or derivimplicit with every x' linear in x;
USEION reads of reversal potentials (parameters), ica and cai; writes of currents and of cai (a STATE);
NONSPECIFIC_CURRENT; INITIAL (each state starts where it puts it: 0 where it leaves a state alone, cai at
NEURON's cai0_ca_ion); NET_RECEIVE(weight) adding weight times an expression of the parameters to
states. TABLE is ignored (the expressions are evaluated exactly). Anything else is a MechanismError
naming the file and line.
"""

from .cache import VERSION, cache_dir, load, translate
from .listing import describe

__all__ = ["VERSION", "cache_dir", "describe", "load", "translate"]
