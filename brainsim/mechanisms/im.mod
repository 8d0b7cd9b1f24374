TITLE im: M-type K+ channel (Im)

COMMENT
The M-type K+ current of Hay et al. 2011 (Adams et al. 1982): ik = gbar·m·(V − ek) (mA/cm²), with
αm = 3.3e-3·exp(2.5·0.04·(V + 35)), βm = 3.3e-3·exp(−2.5·0.04·(V + 35)) (1/ms), m∞ = αm/(αm + βm),
τm = 1/(qt·(αm + βm)). Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10).
ENDCOMMENT

NEURON {
    SUFFIX im
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
    celsius (degC)
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
    LOCAL a, b, qt
    qt = 2.3^((celsius - 21)/10)
    a = 3.3e-3*exp(2.5*0.04*(v + 35))
    b = 3.3e-3*exp(-2.5*0.04*(v + 35))
    minf = a/(a + b)
    mtau = 1/(qt*(a + b))
}
