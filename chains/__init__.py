"""Built-in chain YAML files, shipped as package data (loaded via diffmoog.spec.chains_dir)."""
