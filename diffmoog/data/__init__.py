"""Datasets: synthetic parameter-labelled sets, NSynth and folders of real audio."""
