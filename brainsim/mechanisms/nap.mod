TITLE nap: persistent Na+ channel (Nap_Et2)

COMMENT
The persistent Na+ channel of Hay et al. 2011 (Magistretti & Alonso 1999): ina = gbar·m³·h·(V − ena)
(mA/cm²), with
  m∞ = 1/(1 + exp(−(V + 52.6)/4.6)),   τm = 6/(qt·(αm + βm)), αm and βm those of nata,
  h∞ = 1/(1 + exp((V + 48.8)/10)),     τh = 1/(qt·(αh + βh)),
  αh = −2.88e-6·(V + 17)/(1 − exp((V + 17)/4.63)),  βh = 6.94e-6·(V + 64.4)/(1 − exp(−(V + 64.4)/2.63)).
Rates fitted at 21 °C, scaled by qt = 2.3^((celsius − 21)/10). The 0/0 points take their limits.
ENDCOMMENT

NEURON {
    SUFFIX nap
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
    minf = 1/(1 + exp(-(v + 52.6)/4.6))
    mtau = 6/(qt*(a + b))
    a = -2.88e-6*(v + 17)/(1 - exp((v + 17)/4.63))
    b = 6.94e-6*(v + 64.4)/(1 - exp(-(v + 64.4)/2.63))
    hinf = 1/(1 + exp((v + 48.8)/10))
    htau = 1/(qt*(a + b))
}
