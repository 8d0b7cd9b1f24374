TITLE nats: somatic transient Na+ channel (NaTs2_t)

COMMENT
The somatic transient Na+ channel of the Blue Brain L5PC models (BluePyOpt): nata's kinetics with
activation and inactivation shifted by +6 mV. ina = gbar·m³·h·(V − ena) (mA/cm²), with
  αm = 0.182·(V + 32)/(1 − exp(−(V + 32)/6)),   βm = 0.124·(−V − 32)/(1 − exp((V + 32)/6)),
  αh = −0.015·(V + 60)/(1 − exp((V + 60)/6)),   βh = −0.015·(−V − 60)/(1 − exp((−V − 60)/6)) (1/ms),
x∞ = α/(α + β), τx = 1/(qt·(α + β)), qt = 2.3^((celsius − 21)/10). The 0/0 points (V = −32 and
−60 mV) take their limits.
ENDCOMMENT

NEURON {
    SUFFIX nats
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
    a = 0.182*(v + 32)/(1 - exp(-(v + 32)/6))
    b = 0.124*(-v - 32)/(1 - exp((v + 32)/6))
    minf = a/(a + b)
    mtau = 1/(qt*(a + b))
    a = -0.015*(v + 60)/(1 - exp((v + 60)/6))
    b = -0.015*(-v - 60)/(1 - exp((-v - 60)/6))
    hinf = a/(a + b)
    htau = 1/(qt*(a + b))
}
