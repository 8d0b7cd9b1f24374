TITLE kv31: fast Kv3.1 K+ channel (SKv3_1)

COMMENT
The fast Kv3.1 K+ channel of Hay et al. 2011 (Rettig et al. 1992): ik = gbar·m·(V − ek) (mA/cm²),
m∞ = 1/(1 + exp(−(V − 18.7)/9.7)), τm = 0.2·20/(1 + exp(−(V + 46.56)/44.14)) ms. No temperature
dependence.
ENDCOMMENT

NEURON {
    SUFFIX kv31
    USEION k READ ek WRITE ik
    RANGE gbar
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 1e-5 (S/cm2)
    ek = -85 (mV)
}

STATE { m }

ASSIGNED {
    v (mV)
    ik (mA/cm2)
    minf
    mtau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar*m*(v - ek)
}

INITIAL {
    rates(v)
    m = minf
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m)/mtau
}

PROCEDURE rates(v (mV)) {
    minf = 1/(1 + exp(-(v - 18.7)/9.7))
    mtau = 0.2*20/(1 + exp(-(v + 46.56)/44.14))
}
