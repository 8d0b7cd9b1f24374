"""The patient twin: a patient's recordings as observations, the fit of a brain to them, and treatments
forked from the fitted state."""
