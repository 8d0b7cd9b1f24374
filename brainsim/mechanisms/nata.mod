TITLE nata: transient Na+ channel (NaTa_t)

COMMENT
The transient Na+ channel of Hay et al. 2011 (ModelDB 139653; Colbert & Pan 2002):
ina = gbar·m³·h·(V − ena) (mA/cm²), with
  αm = 0.182·(V + 38)/(1 − exp(−(V + 38)/6)),   βm = 0.124·(−V − 38)/(1 − exp((V + 38)/6)),
  αh = −0.015·(V + 66)/(1 − exp((V + 66)/6)),   βh = −0.015·(−V − 66)/(1 − exp((−V − 66)/6)) (1/ms),
x∞ = α/(α + β), τx = 1/(qt·(α + β)). Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10).
The 0/0 points (V = −38 and −66 mV) take their limits.
ENDCOMMENT

NEURON {
    SUFFIX nata
    USEION na READ ena WRITE ina
    RANGE gbar
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 1e-5 (S/cm2)
    ena = 50 (mV)
}

STATE { m h }

ASSIGNED {
    v (mV)
    celsius (degC)
    ina (mA/cm2)
    minf
    hinf
    mtau (ms)
    htau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gbar*m*m*m*h*(v - ena)
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
    LOCAL a, b, qt
    qt = 2.3^((celsius - 21)/10)
    a = 0.182*(v + 38)/(1 - exp(-(v + 38)/6))
    b = 0.124*(-v - 38)/(1 - exp((v + 38)/6))
    minf = a/(a + b)
    mtau = 1/(qt*(a + b))
    a = -0.015*(v + 66)/(1 - exp((v + 66)/6))
    b = -0.015*(-v - 66)/(1 - exp((-v - 66)/6))
    hinf = a/(a + b)
    htau = 1/(qt*(a + b))
}
