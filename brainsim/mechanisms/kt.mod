TITLE kt: fast transient (A-type) K+ channel (K_Tst)

COMMENT
The fast transient K+ channel of Hay et al. 2011 (Korngreen & Sakmann 2000): ik = gbar·m⁴·h·(V − ek)
(mA/cm²). Kinetics shifted by −10 mV for the junction potential, i.e. evaluated at u = V + 10:
  m∞ = 1/(1 + exp(−u/19)),        τm = 0.34 + 0.92·exp(−((u + 71)/59)²),
  h∞ = 1/(1 + exp((u + 66)/10)),  τh = 8 + 49·exp(−((u + 73)/23)²) (ms),
the time constants divided by qt = 2.3^((celsius − 21)/10) (rates fitted at 21 °C).
ENDCOMMENT

NEURON {
    SUFFIX kt
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
    ik = gbar*m*m*m*m*h*(v - ek)
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
    minf = 1/(1 + exp(-u/19))
    mtau = (0.34 + 0.92*exp(-((u + 71)/59)^2))/qt
    hinf = 1/(1 + exp((u + 66)/10))
    htau = (8 + 49*exp(-((u + 73)/23)^2))/qt
}
