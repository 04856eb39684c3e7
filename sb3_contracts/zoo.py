"""Run rl-zoo3 with this package's algorithms and env ids.

rl-zoo3 knows only its own algorithms; this entry point registers ContractDQN (``contract_dqn``) and the
names that ``zoo_configs/*.yml`` use in ``policy_kwargs`` strings, then hands over to rl-zoo3's own
command line. Needs the ``zoo`` extra (``pip install -e ".[zoo]"``)::

    python -m sb3_contracts.zoo train --algo contract_dqn --env ContractBinaryTree-v0 \\
        --conf-file zoo_configs/contract_dqn.yml -f logs/
    python -m sb3_contracts.zoo enjoy --algo contract_dqn --env ContractBinaryTree-v0 -f logs/ --no-render
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The names rl-zoo3 must resolve when it evaluates ``policy_kwargs`` strings of our configs, and their modules.
_CONFIG_NAMES = {"OneHotEmbedding": "sb3_contracts.contract_dqn",
                 "CenteredCoinExtractor": "sb3_contracts.multiagent.encoders"}


def register() -> None:
    """Make ``contract_dqn`` an rl-zoo3 algorithm and our config names resolvable (idempotent)."""
    import importlib

    import rl_zoo3
    import rl_zoo3.exp_manager

    import sb3_contracts  # noqa: F401  (registers the env ids)
    from sb3_contracts import contract_dqn

    rl_zoo3.ALGOS["contract_dqn"] = contract_dqn.ContractDQN
    for name, module in _CONFIG_NAMES.items():
        setattr(rl_zoo3.exp_manager, name, getattr(importlib.import_module(module), name))


def main(argv: Sequence[str] | None = None) -> None:
    """``train`` or ``enjoy`` with rl-zoo3's own arguments (``train`` uses one torch thread unless told)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "enjoy"):
        raise SystemExit("usage: python -m sb3_contracts.zoo {train,enjoy} [rl-zoo3 arguments]")
    register()
    command = argv.pop(0)
    if command == "train" and "--num-threads" not in argv:
        # Small MLPs: torch's default of one thread per core was 20x slower here whenever the cores were busy.
        argv += ["--num-threads", "1"]
    sys.argv = [f"rl_zoo3 {command}", *argv, "--gym-packages", "sb3_contracts"]
    if command == "train":
        from rl_zoo3.train import train

        train()
    else:
        from rl_zoo3.enjoy import enjoy

        enjoy()


if __name__ == "__main__":
    main()
