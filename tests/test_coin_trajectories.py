"""The Coin Game's principal's views keep their trajectories: digests recorded from the implementation before the
Coin Game ids became instances of the generic contract layer (issue 24, commit d257368), for the same seeds."""

import hashlib

import gymnasium as gym
import numpy as np
import pytest

import sb3_contracts  # noqa: F401  (registers the ids)
from sb3_contracts import ContractCoinGameVecEnv, MultiAgentContractDQN

STEPS = 120


def _update(digest: "hashlib._Hash", value: object) -> None:
    """Feed ``value`` (nested dicts, arrays, numbers) into ``digest``; floats rounded to 9 decimals."""
    if isinstance(value, dict):
        for key in sorted(value):
            if key == "t":  # the episode's wall time
                continue
            digest.update(key.encode())
            _update(digest, value[key])
        return
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = np.round(array.astype(np.float64), 9) + 0.0  # + 0.0: -0.0 and 0.0 hash alike
    digest.update(str(array.dtype.kind).encode() + str(array.shape).encode() + array.tobytes())


def _contracts(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random contracts, some of them all-zero (no recommendation), payments up to b_max = 2."""
    contracts = rng.uniform(0.0, 2.0, shape) * (rng.random(shape) < 0.4)
    contracts[rng.random(shape[:-1]) < 0.2] = 0.0
    return contracts.astype(np.float32)


def single_env_digest(seed: int, **kwargs: object) -> str:
    env = gym.make("ContractCoinGame-v0", **kwargs)
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    _update(digest, {"obs": obs, "info": info})
    for _ in range(STEPS):
        obs, reward, terminated, truncated, info = env.step(_contracts(rng, env.action_space.shape))
        _update(digest, {"obs": obs, "reward": reward, "terminated": terminated, "truncated": truncated,
                         "info": info})
        if terminated or truncated:
            obs, info = env.reset()
            _update(digest, {"obs": obs, "info": info})
    return digest.hexdigest()[:16]


def vec_env_digest(seed: int, n_games: int = 4, **kwargs: object) -> str:
    env = ContractCoinGameVecEnv(n_games, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256()
    _update(digest, env.reset())
    for _ in range(STEPS):
        obs, rewards, dones, infos = env.step(_contracts(rng, (n_games, *env.action_space.shape)))
        _update(digest, {"obs": obs, "rewards": rewards, "dones": dones,
                         "infos": {str(i): info for i, info in enumerate(infos)}})
    return digest.hexdigest()[:16]


SINGLE = {
    "threshold": (dict(), "89e0e45789947f1f"),
    "follow_flat": (dict(agents="follow", obs_format="flat"), "4ed11bec60ff50e2"),
    "selfish_grid_lola": (dict(agents="selfish", obs_format="grid", reward_rule="lola"), "594c6173e5150808"),
    "threshold_3_agents_all": (dict(n_agents=3, contested="all", follow_price=0.5), "07c1fb725511148b"),
}
VEC = {
    "threshold": (dict(), "39125975b31e6fd6"),
    "follow_7x7": (dict(agents="follow", preset="7x7", alpha=0.3), "77b8138bb13b54fc"),
    "selfish_flat": (dict(agents="selfish", obs_format="flat"), "4a18bf5e0af6fd02"),
}


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_the_registered_id_plays_as_before(name):
    kwargs, expected = SINGLE[name]
    assert single_env_digest(3, **kwargs) == expected


@pytest.mark.parametrize("name", sorted(VEC))
def test_the_batched_view_plays_as_before(name):
    kwargs, expected = VEC[name]
    assert vec_env_digest(5, **kwargs) == expected


def learner_digest() -> str:
    """The principal learner on the id (its training agents plugged in as the responder): its parameters after
    300 steps. ξ is pinned to the id's preset when the digest was recorded (0.1; the preset is 0.05 since)."""
    model = MultiAgentContractDQN("MlpPolicy", "ContractCoinGame-v0", n_envs=4, seed=0, learning_starts=100,
                                  buffer_size=1_000, batch_size=32, nudge=0.1)
    model.learn(300)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        digest.update(name.encode())
        _update(digest, tensor.cpu().numpy())
    return digest.hexdigest()[:16]


def test_the_learner_trains_on_the_id_as_before():
    assert learner_digest() == "945a5c49f0119068"
