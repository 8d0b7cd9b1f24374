TITLE hh: Hodgkin-Huxley squid axon channels

COMMENT
The Hodgkin-Huxley 1952 Na+, K+ and leak currents with exact rates (NEURON's hh, Arbor's hh):
ina = gnabar·m³·h·(V − ena), ik = gkbar·n⁴·(V − ek), il = gl·(V − el) (mA/cm²), the rates scaled by
q10 = 3^((celsius − 6.3)/10). The 0/0 points of αm (V = −40 mV) and αn (V = −55 mV) take their limits
(the translator evaluates x/(exp(x) − 1) as exprelr).
ENDCOMMENT

NEURON {
    SUFFIX hh
    USEION na READ ena WRITE ina
    USEION k READ ek WRITE ik
    NONSPECIFIC_CURRENT il
    RANGE gnabar, gkbar, gl, el
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gnabar = 0.12 (S/cm2)
    gkbar = 0.036 (S/cm2)
    gl = 0.0003 (S/cm2)
    el = -54.3 (mV)
    ena = 50 (mV)
    ek = -77 (mV)
}

STATE { m h n }

ASSIGNED {
    v (mV)
    celsius (degC)
    ina (mA/cm2)
    ik (mA/cm2)
    il (mA/cm2)
    minf
    hinf
    ninf
    mtau (ms)
    htau (ms)
    ntau (ms)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gnabar*m*m*m*h*(v - ena)
    ik = gkbar*n*n*n*n*(v - ek)
    il = gl*(v - el)
}

INITIAL {
    rates(v)
    m = minf
    h = hinf
    n = ninf
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m)/mtau
    h' = (hinf - h)/htau
    n' = (ninf - n)/ntau
}

PROCEDURE rates(v (mV)) {
    LOCAL a, b, q10
    q10 = 3^((celsius - 6.3)/10)
    a = 0.1*(v + 40)/(1 - exp(-(v + 40)/10))
    b = 4*exp(-(v + 65)/18)
    minf = a/(a + b)
    mtau = 1/(q10*(a + b))
    a = 0.07*exp(-(v + 65)/20)
    b = 1/(exp(-(v + 35)/10) + 1)
    hinf = a/(a + b)
    htau = 1/(q10*(a + b))
    a = 0.01*(v + 55)/(1 - exp(-(v + 55)/10))
    b = 0.125*exp(-(v + 65)/80)
    ninf = a/(a + b)
    ntau = 1/(q10*(a + b))
}
