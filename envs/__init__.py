"""The worlds: principal-agent MDP models and games, with no learning code.

This package may import numpy, gymnasium and pettingzoo only (never ``sb3_contracts``).
"""

from .binary_tree import random_binary_tree
from .examples import two_state_example
from .mdp import PrincipalAgentMDP, transitions_from_next_states

__all__ = ["PrincipalAgentMDP", "random_binary_tree", "transitions_from_next_states", "two_state_example"]
