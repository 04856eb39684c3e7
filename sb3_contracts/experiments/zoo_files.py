"""rl-zoo3 hyperparameter files written from the presets (``zoo_configs/``): one entry per env id, in rl-zoo3's
format (``policy_kwargs`` as a Python expression rl-zoo3 evaluates, classes by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def zoo_literal(value: Any) -> str:
    """
    A Python expression for ``value`` that rl-zoo3 evaluates back (classes by name).

    :param value: a hyperparameter's value (dicts nest)
    """
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{key}={zoo_literal(item)}" for key, item in value.items()) + ")"
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def zoo_entry(hyperparams: dict[str, Any], n_timesteps: int, n_envs: int, env_kwargs: dict[str, Any]) -> dict:
    """
    One env id's entry of an rl-zoo3 file.

    :param hyperparams: the algorithm's keyword arguments
    :param n_timesteps: the training budget (env steps)
    :param n_envs: parallel envs
    :param env_kwargs: the env's keyword arguments
    """
    entry: dict[str, Any] = {"env_kwargs": env_kwargs, "n_envs": n_envs, "n_timesteps": float(n_timesteps),
                             "policy": "MlpPolicy"}
    for key, value in hyperparams.items():
        entry[key] = zoo_literal(value) if key == "policy_kwargs" else value
    return entry


def write_zoo_file(path: str | Path, entries: dict[str, dict[str, Any]], header: str) -> Path:
    """
    Write ``entries`` (``{env id: entry}``) to the rl-zoo3 file ``path``, keeping every other env id already there.

    :param path: the ``.yml`` file
    :param entries: the entries to (over)write
    :param header: comment lines (each starting with ``#``) on top of the file
    """
    import yaml

    path = Path(path)
    existing = yaml.safe_load(path.read_text()) if path.is_file() else {}
    existing.update(entries)
    path.write_text(header + yaml.safe_dump(existing, sort_keys=False))
    return path
