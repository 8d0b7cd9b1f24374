TITLE expsyn: single-exponential conductance synapse

COMMENT
The synapse of NEURON's ExpSyn and Arbor's expsyn: i = g·(V − e) (nA), dg/dt = −g/tau; an event of
weight w (µS) does g ← g + w.
ENDCOMMENT

NEURON {
    POINT_PROCESS expsyn
    NONSPECIFIC_CURRENT i
    RANGE tau, e
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau = 2 (ms)
    e = 0 (mV)
}

STATE { g (uS) }

ASSIGNED {
    v (mV)
    i (nA)
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    i = g*(v - e)
}

INITIAL {
    g = 0
}

DERIVATIVE state {
    g' = -g/tau
}

NET_RECEIVE(weight (uS)) {
    g = g + weight
}
