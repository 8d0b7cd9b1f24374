"""calva: Ca_LVAst, the low-voltage-activated (T-type) Ca²⁺ channel of Hay et al. 2011 (Avery &
Johnston 1996, τ from Randall 1997).

ica = gbar·m²·h·(V − eca) (mA/cm²), added into the ion array's ica row as well as into the membrane
current (cahva's current kernel). The reversal eca is a fixed parameter (NEURON's default 132.4579 mV),
not a Nernst potential of cai. Kinetics shifted by −10 mV for the junction potential (evaluated at
u = V + 10). Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10).
"""

import numpy as np
from numba import njit

from .. import JIT
from ..mathfn import vexp
from . import cahva

KIND = "density"
STATES = ("m", "h")
PARAMS = (("gbar", 1e-5, "S/cm2"), ("eca", 132.4579, "mV"))
ION_WRITES = ("ica",)
ION_READS = ()


@njit(**JIT)
def rates(vi, node, p, ion, celsius, xinf, tau):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    for j in range(node.size):
        u = vi[j] + 10.0
        xinf[0, j] = 1.0 / (1.0 + vexp(-(u + 30.0) / 6.0))
        tau[0, j] = (5.0 + 20.0 / (1.0 + vexp((u + 25.0) / 5.0))) / qt
        xinf[1, j] = 1.0 / (1.0 + vexp((u + 80.0) / 6.4))
        tau[1, j] = (20.0 + 50.0 / (1.0 + vexp((u + 40.0) / 7.0))) / qt


def rates_np(vi, node, p, ion, celsius):
    qt = 2.3 ** ((celsius - 21.0) / 10.0)
    u = vi + 10.0
    xinf = np.array([1.0 / (1.0 + np.exp(-(u + 30.0) / 6.0)), 1.0 / (1.0 + np.exp((u + 80.0) / 6.4))])
    taum = 5.0 + 20.0 / (1.0 + np.exp((u + 25.0) / 5.0))
    tauh = 20.0 + 50.0 / (1.0 + np.exp((u + 40.0) / 7.0))
    return xinf, np.array([taum, tauh]) / qt


current, current_np = cahva.current, cahva.current_np
