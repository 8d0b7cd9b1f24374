TITLE kp: slow (persistent) K+ channel (K_Pst)

COMMENT
The slow K+ channel of Hay et al. 2011 (Korngreen & Sakmann 2000): ik = gbar·m²·h·(V − ek) (mA/cm²).
Kinetics shifted by −10 mV for the junction potential, i.e. evaluated at u = V + 10:
  m∞ = 1/(1 + exp(−(u + 1)/12)),
  τm = 1.25 + 175.03·exp(0.026·u) for u < −50 mV, 1.25 + 13·exp(−0.026·u) above (as published),
  h∞ = 1/(1 + exp((u + 54)/11)),  τh = 360 + (1010 + 24·(u + 55))·exp(−((u + 75)/48)²) (ms),
the time constants divided by qt = 2.3^((celsius − 21)/10) (rates fitted at 21 °C).
ENDCOMMENT

NEURON {
    SUFFIX kp
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

STATE { m h }

ASSIGNED {
    v (mV)
    celsius (degC)
    ik (mA/cm2)
    minf
    hinf
    mtau (ms)
    htau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar*m*m*h*(v - ek)
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
    LOCAL u, qt
    qt = 2.3^((celsius - 21)/10)
    u = v + 10
    minf = 1/(1 + exp(-(u + 1)/12))
    IF (u < -50) {
        mtau = (1.25 + 175.03*exp(0.026*u))/qt
    } ELSE {
        mtau = (1.25 + 13*exp(-0.026*u))/qt
    }
    hinf = 1/(1 + exp((u + 54)/11))
    htau = (360 + (1010 + 24*(u + 55))*exp(-((u + 75)/48)^2))/qt
}
