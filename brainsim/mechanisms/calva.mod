TITLE calva: low-voltage-activated (T-type) Ca2+ channel (Ca_LVAst)

COMMENT
The low-voltage-activated Ca2+ channel of Hay et al. 2011 (Avery & Johnston 1996, τ from Randall
1997): ica = gbar·m²·h·(V − eca) (mA/cm²), added into the ion array's ica row as well as into the
membrane current. Kinetics shifted by −10 mV for the junction potential, i.e. evaluated at u = V + 10:
  m∞ = 1/(1 + exp(−(u + 30)/6)),    τm = 5 + 20/(1 + exp((u + 25)/5)),
  h∞ = 1/(1 + exp((u + 80)/6.4)),   τh = 20 + 50/(1 + exp((u + 40)/7)) (ms),
the time constants divided by qt = 2.3^((celsius − 21)/10) (rates fitted at 21 °C). eca follows
NEURON's rule: the Nernst potential of cai where a mechanism at the node writes cai (cadyn), else the
`eca` parameter (NEURON's default 132.4579 mV).
ENDCOMMENT

NEURON {
    SUFFIX calva
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
    celsius (degC)
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
    LOCAL u, qt
    qt = 2.3^((celsius - 21)/10)
    u = v + 10
    minf = 1/(1 + exp(-(u + 30)/6))
    mtau = (5 + 20/(1 + exp((u + 25)/5)))/qt
    hinf = 1/(1 + exp((u + 80)/6.4))
    htau = (20 + 50/(1 + exp((u + 40)/7)))/qt
}
