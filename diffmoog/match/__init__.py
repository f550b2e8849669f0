"""Sound matching and sound design: presets, refinement, morphing, variations, streaming."""
