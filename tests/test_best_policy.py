"""Keeping the best policy by rollout evaluation (BestPolicyCallback) and the tree experiment's use of it."""

from __future__ import annotations

import numpy as np
import pytest
from sb3_contracts.envs.binary_tree import random_binary_tree
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_contracts import ContractDQN, PrincipalEnv, PrincipalVecEnv
from sb3_contracts.contract_dqn.presets import binary_tree_hyperparams
from sb3_contracts.evaluation import BestPolicyCallback, ExactEvaluationCallback, evaluate_principal
from sb3_contracts.experiments import run_experiment
from sb3_contracts.experiments.tree import EXPERIMENT, TreeSettings, delivered_history

DEPTH = 4


def tiny_learner(seed: int = 0) -> tuple[ContractDQN, object]:
    mdp = random_binary_tree(DEPTH, 3)
    hyperparams = {**binary_tree_hyperparams(4), "learning_starts": 100, "training_start_states": 0.1}
    return ContractDQN("MlpPolicy", PrincipalVecEnv(mdp, n_envs=4, seed=seed), seed=seed, **hyperparams), mdp


def test_the_kept_policy_is_the_best_evaluated_one_and_is_returned() -> None:
    model, mdp = tiny_learner()
    exact = ExactEvaluationCallback(mdp, eval_freq=10**9)
    kept = []
    keeper = BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=32, seed=7), n_eval_episodes=32, eval_freq=200,
                                start=200, on_new_best=lambda steps: kept.append(
                                    evaluate_principal(model, mdp, exact.spe).utility_ratio))
    model.learn(1_600, callback=[keeper, exact])
    means = [row["mean_reward"] for row in keeper.history]
    assert len(means) == 8 and keeper.best_mean_reward == max(means)
    assert keeper.kept_at == keeper.history[int(np.argmax(means))]["steps"]  # the first of equal bests stays
    # the model learn returns holds the kept weights, not the last ones
    assert evaluate_principal(model, mdp, exact.spe).utility_ratio == pytest.approx(kept[-1], abs=1e-12)
    # every evaluation is one batch of 32 episodes of DEPTH steps: all counted
    assert keeper.eval_steps == 8 * 32 * DEPTH


def test_evaluations_use_common_random_numbers_and_answer_the_evaluated_policy() -> None:
    model, mdp = tiny_learner()
    model.learn(400)
    keeper = BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=16, seed=3), n_eval_episodes=16, eval_seed=5)
    keeper.init_callback(model)
    first, second = keeper.evaluate(), keeper.evaluate()
    assert first == second  # the same policy on the same draws scores the same
    assert keeper.best_mean_reward == first and len(keeper.history) == 2
    # the evaluation env's agent is the exact best response to the evaluated policy, not the env's own
    responder = keeper.eval_env.venv.agent
    assert getattr(responder, "__self__", None) is keeper.eval_env.venv._responder
    fresh = BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=16, seed=3), n_eval_episodes=16, eval_seed=None)
    fresh.init_callback(model)
    assert len({fresh.evaluate() for _ in range(4)}) > 1  # fresh draws each time


def test_keeping_the_best_leaves_training_unchanged() -> None:
    def trained_history(keep: bool) -> list[float]:
        model, mdp = tiny_learner(seed=1)
        exact = ExactEvaluationCallback(mdp, eval_freq=200)
        callbacks = [exact]
        if keep:
            callbacks.insert(0, BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=8, seed=2), n_eval_episodes=8,
                                                   eval_freq=200, restore_best=False))
        model.learn(1_200, callback=callbacks)
        return [evaluation.utility_ratio for _, evaluation in exact.history]

    assert trained_history(True) == trained_history(False)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"eval_env": PrincipalEnv(random_binary_tree(2, 0))}, ValueError,
     "eval_env must be an SB3 VecEnv or a registered env id"),
    ({"env_kwargs": {"depth": 2}}, ValueError, "env_kwargs goes with an eval_env given as a registered id"),
    ({"n_eval_episodes": 0}, ValueError, "n_eval_episodes must be >= 1, got 0"),
    ({"eval_freq": 2.5}, TypeError, "eval_freq must be an integer, got float 2.5"),
    ({"start": -1}, ValueError, "start must be >= 0, got -1"),
])
def test_bad_arguments_are_named(kwargs: dict, error: type, match: str) -> None:
    mdp = random_binary_tree(2, 0)
    arguments = {"eval_env": PrincipalVecEnv(mdp, n_envs=2), **kwargs}
    with pytest.raises(error, match=match):
        BestPolicyCallback(**arguments)


def test_respond_needs_an_env_that_offers_it() -> None:
    mdp = random_binary_tree(2, 0)
    with pytest.raises(ValueError, match="respond=True needs an eval_env that offers respond_to_principal"):
        BestPolicyCallback(DummyVecEnv([lambda: PrincipalEnv(mdp)]), respond=True)
    assert BestPolicyCallback(DummyVecEnv([lambda: PrincipalEnv(mdp)])).respond is False


def test_delivered_history_follows_the_policy_kept_by_then() -> None:
    history = [{"steps": s, "utility_ratio": r} for s, r in ((10, 0.1), (20, 0.9), (30, 0.4), (40, 0.95))]
    kept = [{"steps": 20, "utility_ratio": 0.9}, {"steps": 40, "utility_ratio": 0.95}]
    assert delivered_history(history, kept) == [0.1, 0.9, 0.9, 0.95]
    assert delivered_history(history, []) == [0.1, 0.9, 0.4, 0.95]


def test_the_tree_experiment_returns_the_kept_policy(tmp_path) -> None:
    settings = TreeSettings(depth=3, iterations=150, n_envs=4, n_evaluations=6,
                            keep_best={"evaluations": 3, "episodes": 16, "start": 0.5})
    results = run_experiment(EXPERIMENT, settings, tmp_path / "run")
    kept = results["kept"]
    assert kept and results["final"]["utility_ratio"] == pytest.approx(kept[-1]["utility_ratio"], abs=1e-12)
    assert results["eval_env_steps"] == 3 * 16 * 3
    assert results["utility_ratio_min_last10"] == min(
        row["delivered_utility_ratio"] for row in results["history"] if row["steps"] >= 0.9 * 600)
    with pytest.raises(ValueError, match="keep_best\\['start'\\] must be a share of training in \\[0, 1\\)"):
        TreeSettings(keep_best={"evaluations": 3, "episodes": 16, "start": 1.0})
    with pytest.raises(ValueError, match="the keys evaluations, episodes and start"):
        TreeSettings(keep_best={"evaluations": 3})


def test_a_registered_id_gives_the_batched_view_of_its_tree() -> None:
    keeper = BestPolicyCallback("ContractBinaryTree-v0", n_eval_episodes=8, env_kwargs={"depth": 3, "seed": 4})
    view = keeper.eval_env.venv
    assert isinstance(view, PrincipalVecEnv) and view.num_envs == 8 and keeper.respond
    assert np.array_equal(view.mdp.principal_reward, random_binary_tree(3, 4).principal_reward)


def test_margins_are_evaluated_for_each_weights_and_the_best_pair_is_kept() -> None:
    model, mdp = tiny_learner()
    keeper = BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=16, seed=7), n_eval_episodes=16, eval_freq=400,
                                start=400, margins=[0.005, 0.05])
    margins_during_training = []

    class Watch(ExactEvaluationCallback):
        def _on_step(self) -> bool:
            margins_during_training.append(float(self.model.policy.margin))
            return True

    model.learn(1_200, callback=[keeper, Watch(mdp)])
    assert [row["margin"] for row in keeper.history] == pytest.approx([0.005, 0.05] * 3)
    assert set(np.round(margins_during_training, 6)) == {model.nudge}  # training keeps its own nudge
    best = max(keeper.history, key=lambda row: row["mean_reward"])
    assert keeper.kept_margin == pytest.approx(best["margin"])
    assert float(model.policy.margin) == pytest.approx(keeper.kept_margin)  # restored with the weights
    assert keeper.eval_steps == 3 * 2 * 16 * DEPTH


def test_margins_need_a_policy_with_a_nudge() -> None:
    import gymnasium
    from stable_baselines3 import DQN

    mdp = random_binary_tree(2, 0)
    with pytest.raises(ValueError, match="margins must be >= 0.0, got -1.0"):
        BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=2), margins=[0.01, -1.0])
    with pytest.raises(ValueError, match="margins must be a non-empty list of finite nudges >= 0"):
        BestPolicyCallback(PrincipalVecEnv(mdp, n_envs=2), margins=[])
    keeper = BestPolicyCallback(DummyVecEnv([lambda: gymnasium.make("CartPole-v1")]), margins=[0.1])
    with pytest.raises(ValueError, match="margins needs a policy with a margin buffer"):
        keeper.init_callback(DQN("MlpPolicy", "CartPole-v1"))
