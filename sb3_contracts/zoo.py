"""Run rl-zoo3 with this package's algorithms and env ids.

rl-zoo3 knows only its own algorithms; this entry point registers ``contract_dqn`` (ContractDQN, the trees) and
``contract_dqn_multiagent`` (MultiAgentContractDQN, the Coin Game's principal) with an Optuna sampler for each, and
the names that ``zoo_configs/*.yml`` use in ``policy_kwargs`` strings, then hands over to rl-zoo3's own command line.
Needs the ``zoo`` extra (``pip install -e ".[zoo]"``)::

    python -m sb3_contracts.zoo train --algo contract_dqn_multiagent --env ContractCoinGame-v0 \\
        --conf-file zoo_configs/contract_dqn_multiagent.yml -f logs/
    python -m sb3_contracts.zoo enjoy --algo contract_dqn_multiagent --env ContractCoinGame-v0 -f logs/
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

#: The names rl-zoo3 must resolve when it evaluates ``policy_kwargs`` strings of our configs, and their modules.
_CONFIG_NAMES = {"OneHotEmbedding": "sb3_contracts.contract_dqn",
                 "CenteredCoinExtractor": "sb3_contracts.contract_dqn_multiagent.encoders",
                 "CoinConvExtractor": "sb3_contracts.contract_dqn_multiagent.encoders"}


def sample_contract_dqn_multiagent_params(trial: Any, n_actions: int, n_envs: int,
                                          additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    rl-zoo3's Optuna sampler for MultiAgentContractDQN: the principal's learning rate, its decay, the nudge (which
    trades the follow rate against the payments), gradient steps per step, the target copy interval and the
    initial exploration. The other hyperparameters stay the config's.

    :param trial: the Optuna trial
    :param n_actions: unused (rl-zoo3's signature)
    :param n_envs: unused
    :param additional_args: unused
    """
    learning_rate = trial.suggest_float("learning_rate", 1e-4, 2e-3, log=True)
    return {
        "learning_rate": learning_rate,
        "learning_rate_final": learning_rate * trial.suggest_float("learning_rate_decay", 0.05, 1.0, log=True),
        "nudge": trial.suggest_float("nudge", 0.01, 0.3, log=True),
        "gradient_steps": trial.suggest_categorical("gradient_steps", [1, 2, 4]),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [500, 1000, 2000, 4000]),
        "exploration_initial_eps": trial.suggest_float("exploration_initial_eps", 0.1, 0.6),
    }


def sample_contract_dqn_params(trial: Any, n_actions: int, n_envs: int,
                               additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    rl-zoo3's Optuna sampler for ContractDQN on the trees: learning rate and its decay, the nudge and the target
    copy interval.

    :param trial: the Optuna trial
    :param n_actions: unused (rl-zoo3's signature)
    :param n_envs: environments (the copy interval counts env steps over all of them)
    :param additional_args: unused
    """
    learning_rate = trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)
    return {
        "learning_rate": learning_rate,
        "learning_rate_final": learning_rate * trial.suggest_float("learning_rate_decay", 0.03, 1.0, log=True),
        "nudge": trial.suggest_float("nudge", 0.001, 0.1, log=True),
        "target_update_interval": n_envs * trial.suggest_categorical("target_copy_iterations", [25, 50, 100]),
    }


def register() -> None:
    """Make our algorithms rl-zoo3 algorithms (with samplers) and our config names resolvable (idempotent)."""
    import importlib

    import rl_zoo3
    import rl_zoo3.exp_manager
    import rl_zoo3.hyperparams_opt as opt

    import sb3_contracts  # noqa: F401  (registers the env ids)
    from sb3_contracts.contract_dqn import ContractDQN
    from sb3_contracts.contract_dqn_multiagent import MultiAgentContractDQN

    rl_zoo3.ALGOS["contract_dqn"] = ContractDQN
    rl_zoo3.ALGOS["contract_dqn_multiagent"] = MultiAgentContractDQN
    for algo, sampler in (("contract_dqn", sample_contract_dqn_params),
                          ("contract_dqn_multiagent", sample_contract_dqn_multiagent_params)):
        opt.HYPERPARAMS_SAMPLER[algo] = sampler
        opt.HYPERPARAMS_CONVERTER[algo] = dict  # the samplers return the algorithm's own arguments
    for name, module in _CONFIG_NAMES.items():
        setattr(rl_zoo3.exp_manager, name, getattr(importlib.import_module(module), name))


#: What ``python -m sb3_contracts.zoo --help`` prints.
HELP = """usage: python -m sb3_contracts.zoo {train,enjoy} [rl-zoo3 arguments]

rl-zoo3 with this package's algorithms (--algo contract_dqn: ContractDQN on ContractBinaryTree-v0; --algo
contract_dqn_multiagent: MultiAgentContractDQN on ContractCoinGame-v0) and env ids registered.

commands:
  train   rl-zoo3's train: --algo, --env, --conf-file (zoo_configs/*.yml), -f (log folder), -n (steps),
          --eval-freq, --tensorboard-log, --env-kwargs, --hyperparams, -optimize (Optuna), ...
          (one torch thread unless --num-threads says otherwise)
  enjoy   rl-zoo3's enjoy: plays the latest model of -f for --algo and --env (-n steps; the game is printed as
          text each step, --no-render to skip it; --deterministic, --load-best, ...)

'python -m sb3_contracts.zoo train --help' and 'python -m sb3_contracts.zoo enjoy --help' list every option.

examples:
  python -m sb3_contracts.zoo train --algo contract_dqn_multiagent --env ContractCoinGame-v0 \\
      --conf-file zoo_configs/contract_dqn_multiagent.yml -f logs/
  python -m sb3_contracts.zoo enjoy --algo contract_dqn_multiagent --env ContractCoinGame-v0 -f logs/ -n 200"""


def main(argv: Sequence[str] | None = None) -> None:
    """
    ``train`` or ``enjoy`` with rl-zoo3's own arguments (``train`` uses one torch thread unless told); ``--help``
    prints :data:`HELP`.

    :param argv: the arguments (default: the command line's)
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(HELP)
        raise SystemExit(0)
    if not argv or argv[0] not in ("train", "enjoy"):
        raise SystemExit(f"{HELP.splitlines()[0]}\n(python -m sb3_contracts.zoo --help for the commands)")
    register()
    command = argv.pop(0)
    if command == "train" and "--num-threads" not in argv:
        # Small MLPs: torch's default of one thread per core was 20x slower here whenever the cores were busy.
        argv += ["--num-threads", "1"]
    sys.argv = [f"python -m sb3_contracts.zoo {command}", *argv, "--gym-packages", "sb3_contracts"]
    if command == "train":
        from rl_zoo3.train import train

        train()
    else:
        from rl_zoo3.enjoy import enjoy

        enjoy()


if __name__ == "__main__":
    main()
