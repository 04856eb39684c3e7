"""The Coin Game experiment: its settings, phases, baselines, metrics and plots."""
