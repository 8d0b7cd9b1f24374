TITLE cahva: high-voltage-activated Ca2+ channel (Ca_HVA)

COMMENT
The high-voltage-activated Ca2+ channel of Hay et al. 2011 (Reuveni et al. 1993):
ica = gbar·m²·h·(V − eca) (mA/cm²), added into the ion array's ica row as well as into the membrane
current, with
  αm = 0.055·(−27 − V)/(exp((−27 − V)/3.8) − 1),  βm = 0.94·exp((−75 − V)/17),
  αh = 0.000457·exp((−13 − V)/50),                βh = 0.0065/(exp((−V − 15)/28) + 1) (1/ms),
x∞ = α/(α + β), τx = 1/(α + β); no temperature dependence, and the 0/0 point (V = −27 mV) takes its
limit. eca follows NEURON's rule: the Nernst potential of cai where a mechanism at the node writes cai
(cadyn), else the `eca` parameter (NEURON's default 132.4579 mV).
ENDCOMMENT

NEURON {
    SUFFIX cahva
    USEION ca READ eca WRITE ica
    RANGE gbar
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 1e-5 (S/cm2)
    eca = 132.4579 (mV)
}

STATE { m h }

ASSIGNED {
    v (mV)
    ica (mA/cm2)
    minf
    hinf
    mtau (ms)
    htau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ica = gbar*m*m*h*(v - eca)
}

INITIAL {
    rates(v)
    m = minf
    h = hinf
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m)/mtau
    h' = (hinf - h)/htau
}

PROCEDURE rates(v (mV)) {
    LOCAL a, b
    a = 0.055*(-27 - v)/(exp((-27 - v)/3.8) - 1)
    b = 0.94*exp((-75 - v)/17)
    minf = a/(a + b)
    mtau = 1/(a + b)
    a = 0.000457*exp((-13 - v)/50)
    b = 0.0065/(exp((-v - 15)/28) + 1)
    hinf = a/(a + b)
    htau = 1/(a + b)
}
