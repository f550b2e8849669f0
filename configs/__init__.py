"""Built-in training config YAML files, shipped as package data (loaded via diffmoog.train.config.configs_dir)."""
