"""sb3-contracts: principal-agent reinforcement learning with contracts."""

__version__ = "0.1.0"
