TITLE ih: HCN non-specific cation channel (Ih)

COMMENT
The HCN current of Hay et al. 2011 (Kole, Hallermann & Stuart 2006): ihcn = gbar·m·(V − ehcn)
(mA/cm²), with αm = 0.001·6.43·(V + 154.9)/(exp((V + 154.9)/11.9) − 1), βm = 0.001·193·exp(V/33.1)
(1/ms), m∞ = αm/(αm + βm), τm = 1/(αm + βm). No temperature dependence; the 0/0 point
(V = −154.9 mV) takes its limit.
ENDCOMMENT

NEURON {
    SUFFIX ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gbar, ehcn
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 1e-5 (S/cm2)
    ehcn = -45 (mV)
}

STATE { m }

ASSIGNED {
    v (mV)
    ihcn (mA/cm2)
    minf
    mtau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ihcn = gbar*m*(v - ehcn)
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
    LOCAL a, b
    a = 0.001*6.43*(v + 154.9)/(exp((v + 154.9)/11.9) - 1)
    b = 0.001*193*exp(v/33.1)
    minf = a/(a + b)
    mtau = 1/(a + b)
}
