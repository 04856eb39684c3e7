"""
SB3's per-environment ``VecEnv`` methods for a ``VecEnv`` that is one batched object (the games of a batch share
one core): every index is that object, so an attribute is read or set once and a method is called once, its result
handed to each index. The principal's views (one agent, many agents) and the agents' batched view use it.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices


class OneBatchVecEnvMethods:
    """Mixin placed before ``VecEnv`` in the bases of a batched view (it relies on ``VecEnv._get_indices``)."""

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of this batch once; its result is repeated for every selected slot."""
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
