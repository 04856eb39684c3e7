"""The Coin Game experiment keeps its numbers when it runs through the generic contract layer: a tiny run (a few
hundred steps per phase) recorded before the experiment took any wrapped game (issue 24, commit d257368)."""

import pytest

from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.coin.experiment import EXPERIMENT, CoinSettings

# ξ pinned to the 3x3 preset's value at d257368 (0.1; the preset moved to 0.05 since): the numbers test the layer
MICRO = dict(preset="3x3", nudge=0.1, n_games=2, principal_steps=200, agent_steps=200, baseline_steps=200, eval_games=4,
             eval_episodes=1, algos=("dqn", "ppo"), principal_kwargs={"learning_starts": 50},
             agent_kwargs={"dqn": {"learning_starts": 50}, "ppo": {"n_steps": 16, "batch_size": 32}})
#: What the run gave at d257368 (``nan`` compares equal to ``nan`` below).
RECORDED = {
    "principal_follow": {
        "payments": 4.24324032664299,
        "welfare": 2.250000014901161,
    },
    "ratios": {
        "ic_deviating_return": 2.85664507932961,
        "ic_following_return": 3.4389001205563545,
        "ic_ratio": 0.8306856783230605,
        "spe_deviating_return": 0.959552176296711,
        "spe_following_return": 3.0348403975367546,
        "spe_ratio": 0.3161787938092352,
    },
    "summary": {
        "constant_proportion_margin": -3.4000000059604645,
        "constant_proportion_margin_se": 1.3898441187111343,
        "constant_proportion_welfare_ratio": 4.4117647069135755,
        "cooperative_optimal_ratio": 0.06115107922894086,
        "cooperative_welfare": 0.8500000014901161,
        "follow_rate": 0.6625,
        "ic_ratio": 0.8306856783230605,
        "optimal_ratio": 0.025179856216153648,
        "optimal_welfare": 13.900000003398764,
        "payment_share": 8.074931393457602,
        "proportion_optimal_ratio": 0.2697841731319171,
        "selfish_optimal_ratio": 0.014388489419520083,
        "selfish_welfare_ratio": 0.2352941207407255,
        "spe_ratio": 0.3161787938092352,
        "welfare": 0.3500000014901161,
        "welfare_ratio": 0.41176470691357514,
    },
    "validation": {
        "dqn": {
            "follow_rate": 0.6625,
            "payments": 2.8262259997427464,
            "welfare": 0.3500000014901161,
        },
        "ppo": {
            "follow_rate": 0.0625,
            "payments": 0.270976385101676,
            "welfare": 1.5500000044703484,
        },
    },
}


def test_the_coin_experiment_gives_the_recorded_numbers():
    results = run_experiment(EXPERIMENT, CoinSettings(**MICRO), None, parallel=False)
    for part, recorded in RECORDED.items():
        for key, value in recorded.items():
            got = results[part][key]
            if isinstance(value, dict):
                assert {k: got[k] for k in value} == pytest.approx(value, rel=1e-9, nan_ok=True), (part, key)
            else:
                assert got == pytest.approx(value, rel=1e-9, nan_ok=True), (part, key)
