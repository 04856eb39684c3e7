"""The worlds: principal-agent MDP models and games, with no learning code.

This package may import numpy, gymnasium and pettingzoo only (never ``sb3_contracts``).
"""
