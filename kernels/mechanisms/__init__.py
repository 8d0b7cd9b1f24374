"""The mechanism catalogue: name -> kernel module.

A mechanism module declares KIND ("density": currents in mA/cm², or "point": currents in nA),
STATES, PARAMS ((name, default, unit), ...), ION_WRITES/ION_READS (names from kernels.ions) and two
loop kernels with NumPy twins:

    rates(vi, node, p, ion, celsius, xinf, tau)       every state relaxes as dx/dt = (x∞ − x)/τ
    current(v, node, p, s, ion, i_acc, g_acc, dids)   adds i and dI/dV per node; writes ∂i/∂state

`vi` is V per instance (vi[j] = v[node[j]], gathered by the caller so the rate loop vectorises), `v`
is V per node, p is (n_params, n), s/xinf/tau/dids are (n_states, n).

Point mechanisms that receive events also define event_scale(p). Adding a built-in mechanism is one
module here and one entry in CATALOGUE; a config can also load .mod files (its mechanisms.paths), which
brainsim/nmodl translates into modules of this interface (brainsim/config/mechanisms.py).
"""

from . import cadyn, cahva, calva, exp2syn, expsyn, hh, ih, im, kp, kt, kv31, nap, nata, nats, pas, sk

CATALOGUE = {
    "hh": hh,
    "pas": pas,
    "expsyn": expsyn,
    "exp2syn": exp2syn,
    "nata": nata,
    "nats": nats,
    "nap": nap,
    "kv31": kv31,
    "kp": kp,
    "kt": kt,
    "im": im,
    "ih": ih,
    "cahva": cahva,
    "calva": calva,
    "sk": sk,
    "cadyn": cadyn,
}
