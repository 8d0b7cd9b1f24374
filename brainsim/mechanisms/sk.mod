TITLE sk: small-conductance Ca2+-activated K+ channel (SK_E2)

COMMENT
The SK channel of Hay et al. 2011 (Köhler et al. 1996): ik = gbar·z·(V − ek) (mA/cm²), with
z∞ = 1/(1 + (0.00043 mM/cai)^4.8), a function of [Ca]i only (1e-7 mM is added to cai below 1e-7 mM,
as published), and τz = ztau. No temperature dependence.
ENDCOMMENT

NEURON {
    SUFFIX sk
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar, ztau
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (mM) = (milli/liter)
    (S) = (siemens)
}

PARAMETER {
    gbar = 1e-6 (S/cm2)
    ek = -85 (mV)
    ztau = 1 (ms)
}

STATE { z }

ASSIGNED {
    v (mV)
    cai (mM)
    ik (mA/cm2)
    zinf
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar*z*(v - ek)
}

INITIAL {
    rates(cai)
    z = zinf
}

DERIVATIVE states {
    rates(cai)
    z' = (zinf - z)/ztau
}

PROCEDURE rates(ca (mM)) {
    IF (ca < 1e-7) {
        ca = ca + 1e-7
    }
    zinf = 1/(1 + (0.00043/ca)^4.8)
}
