TITLE exp2syn: double-exponential conductance synapse

COMMENT
The synapse of NEURON's Exp2Syn: g = B − A with dA/dt = −A/tau1, dB/dt = −B/tau2 (tau1 < tau2, ms);
i = g·(V − e) (nA). An event of weight w adds w·factor to A and B, the factor chosen so that the peak of
g is w (µS): the peak is at tpeak = tau1·tau2/(tau2 − tau1)·ln(tau2/tau1), and
factor = 1/(exp(−tpeak/tau2) − exp(−tpeak/tau1)).
ENDCOMMENT

NEURON {
    POINT_PROCESS exp2syn
    NONSPECIFIC_CURRENT i
    RANGE tau1, tau2, e
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau1 = 0.5 (ms)
    tau2 = 2 (ms)
    e = 0 (mV)
}

STATE {
    A (uS)
    B (uS)
}

ASSIGNED {
    v (mV)
    i (nA)
    factor
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    i = (B - A)*(v - e)
}

INITIAL {
    LOCAL tpeak
    A = 0
    B = 0
    tpeak = tau1*tau2/(tau2 - tau1)*log(tau2/tau1)
    factor = 1/(exp(-tpeak/tau2) - exp(-tpeak/tau1))
}

DERIVATIVE state {
    A' = -A/tau1
    B' = -B/tau2
}

NET_RECEIVE(weight (uS)) {
    A = A + weight*factor
    B = B + weight*factor
}
