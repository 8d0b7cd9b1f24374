TITLE cadyn: submembrane Ca2+ shell (CaDynamics_E2)

COMMENT
The submembrane [Ca]i shell of Hay et al. 2011 (after Destexhe et al. 1994):
dcai/dt = −1e4·gamma·ica/(2·F·depth) − (cai − minCai)/decay (mM/ms; ica in mA/cm², depth in µm),
i.e. relaxation to cai∞ = minCai − decay·1e4·gamma·ica/(2·F·depth) with τ = decay. It reads the ica
that the Ca2+ channels at the node sum into the ion array and writes its state cai into it (for sk), and
carries no membrane current. There is no INITIAL block: cai starts at NEURON's cai0_ca_ion, 5e-5 mM.
F is Faraday's constant, 96485.33212331 C/mol (e·N_A of CODATA 2018, as NEURON computes it).
ENDCOMMENT

NEURON {
    SUFFIX cadyn
    USEION ca READ ica WRITE cai
    RANGE gamma, decay, depth, minCai
}

UNITS {
    (mA) = (milliamp)
    (mM) = (milli/liter)
    (um) = (micron)
    FARADAY = (faraday) (coulombs)
}

PARAMETER {
    gamma = 0.05 (1)
    decay = 80 (ms)
    depth = 0.1 (um)
    minCai = 1e-4 (mM)
}

STATE { cai (mM) }

ASSIGNED {
    ica (mA/cm2)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
}

DERIVATIVE states {
    cai' = -10000*ica*gamma/(2*FARADAY*depth) - (cai - minCai)/decay
}
