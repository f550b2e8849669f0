"""Training: encoders, features, losses, metrics, the trainer and its CLIs."""
