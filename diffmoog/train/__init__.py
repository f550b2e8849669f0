"""Training: encoders, loss terms, the trainer and its CLIs (spectral measurements: diffmoog.analysis)."""
