"""Loading a saved learner without running code from the file.

An SB3 model zip stores the parameters as tensors (read with ``torch.load(weights_only=True)``, safe) and the
learner's other attributes as JSON, except those JSON cannot hold (spaces, classes, schedules), which SB3 pickles
with cloudpickle: unpickling a crafted file runs its code. So the contract learners also save a plain description
of those attributes (:func:`describe`) and, unless the caller trusts the file, load rebuilds them from it
(:func:`safe_replacements`) and refuses a file whose pickled entries it cannot rebuild, naming them. Classes are
rebuilt by import path from the packages an SB3 model of this library can name (:data:`TRUSTED_MODULES`) only:
importing such a module runs nothing the library does not.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

#: Packages whose classes a saved learner may name (policies, features extractors, buffers, activations).
TRUSTED_MODULES = ("sb3_contracts", "stable_baselines3", "sb3_contrib", "torch.nn", "torch.optim")
#: The attribute that holds the plain description in the saved data.
SAFE_KEY = "_safe_attributes"


class ExponentialSchedule:
    """
    Exponential interpolation from ``initial_value`` (progress remaining 1) to ``final_value`` (0): a class, so that
    saving describes it by its two numbers.

    :param initial_value: value at the start of training (> 0)
    :param final_value: value at the end of training (> 0)
    """

    def __init__(self, initial_value: float, final_value: float) -> None:
        if not (np.isfinite(initial_value) and np.isfinite(final_value)) or initial_value <= 0 or final_value <= 0:
            raise ValueError(f"exponential schedule values must be positive and finite, got {initial_value}, "
                             f"{final_value}")
        self.initial_value, self.final_value = float(initial_value), float(final_value)

    def __call__(self, progress_remaining: float) -> float:
        return float(self.final_value * (self.initial_value / self.final_value) ** progress_remaining)

    def __repr__(self) -> str:
        return f"ExponentialSchedule({self.initial_value}, {self.final_value})"


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_class(path: str) -> type:
    """
    The class at ``module:qualname``, imported only from :data:`TRUSTED_MODULES`.

    :param path: the class's import path
    """
    module, _, qualname = path.partition(":")
    if not any(module == root or module.startswith(root + ".") for root in TRUSTED_MODULES):
        raise ValueError(f"the file names a class outside the trusted packages {TRUSTED_MODULES}: {path!r}")
    value: Any = importlib.import_module(module)
    for name in qualname.split("."):
        value = getattr(value, name)
    if not isinstance(value, type):
        raise ValueError(f"{path!r} is not a class")
    return value


def encode(value: Any) -> Any:
    """
    A JSON description of ``value`` (spaces, classes, known schedules, train frequencies, containers, numbers).

    :raises TypeError: for anything else (e.g. an arbitrary function), which only pickling can save
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, TrainFreq):
        return {"train_freq": [value.frequency, value.unit.value]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"ndarray": {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}}
    if isinstance(value, deque):
        return {"deque": {"maxlen": value.maxlen, "items": [encode(item) for item in value]}}
    if isinstance(value, dict):
        return {"dict": {str(key): encode(item) for key, item in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [encode(item) for item in value]}
    if isinstance(value, type):
        return {"class": _class_path(value)}
    if isinstance(value, spaces.Space):
        return {"space": _encode_space(value)}
    return {"schedule": _encode_schedule(value)}


def _encode_space(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: _encode_space(item) for key, item in space.spaces.items()}}
    raise TypeError(f"no plain description of the space {space}")


def _encode_schedule(schedule: Any) -> dict[str, Any]:
    if isinstance(schedule, ExponentialSchedule):
        return {"type": "exponential", "initial": schedule.initial_value, "final": schedule.final_value}
    if isinstance(schedule, LinearSchedule):
        return {"type": "linear", "start": schedule.start, "end": schedule.end, "end_fraction": schedule.end_fraction}
    if isinstance(schedule, ConstantSchedule):
        return {"type": "constant", "value": schedule.val}
    if isinstance(schedule, FloatSchedule):
        return {"type": "float", "inner": _encode_schedule(schedule.value_schedule)}
    raise TypeError(f"no plain description of {schedule!r}")


def decode(value: Any) -> Any:
    """The value :func:`encode` described (classes from :data:`TRUSTED_MODULES` only)."""
    if not isinstance(value, dict):
        return value
    (kind, item), = value.items()
    if kind == "dict":
        return {key: decode(inner) for key, inner in item.items()}
    if kind in ("list", "tuple"):
        items = [decode(inner) for inner in item]
        return items if kind == "list" else tuple(items)
    if kind == "class":
        return resolve_class(item)
    if kind == "space":
        return _decode_space(item)
    if kind == "train_freq":
        return TrainFreq(int(item[0]), TrainFrequencyUnit(item[1]))
    if kind == "ndarray":
        return np.asarray(item["data"], dtype=np.dtype(item["dtype"])).reshape(item["shape"])
    if kind == "deque":
        return deque((decode(inner) for inner in item["items"]), maxlen=item["maxlen"])
    if kind == "schedule":
        return _decode_schedule(item)
    raise ValueError(f"unknown description {kind!r}")


def _decode_space(item: dict[str, Any]) -> spaces.Space:
    kind = item["type"]
    if kind == "Box":
        dtype = np.dtype(item["dtype"])
        return spaces.Box(np.asarray(item["low"], dtype=dtype), np.asarray(item["high"], dtype=dtype), dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(item["n"], start=item["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(item["nvec"])
    if kind == "Dict":
        return spaces.Dict({key: _decode_space(inner) for key, inner in item["spaces"].items()})
    raise ValueError(f"unknown space {kind!r}")


def _decode_schedule(item: dict[str, Any]) -> Callable[[float], float]:
    kind = item["type"]
    if kind == "exponential":
        return ExponentialSchedule(item["initial"], item["final"])
    if kind == "linear":
        return LinearSchedule(item["start"], item["end"], item["end_fraction"])
    if kind == "constant":
        return ConstantSchedule(item["value"])
    if kind == "float":
        return FloatSchedule(_decode_schedule(item["inner"]))
    raise ValueError(f"unknown schedule {kind!r}")


def describe(model: Any, excluded: set[str]) -> dict[str, Any]:
    """
    The plain description saved with ``model``: its class and every attribute SB3 would pickle (not plain JSON)
    that has one; the others (e.g. a lambda as learning rate) stay pickled only and make the file need
    ``trusted=True``.

    :param model: the learner being saved
    :param excluded: the attributes SB3 does not save
    """
    described: dict[str, Any] = {}
    for key, value in model.__dict__.items():
        if key in excluded or key == SAFE_KEY or _is_json(value):
            continue
        try:
            described[key] = encode(value)
        except TypeError:
            continue
    return {"learner": _class_path(type(model)), "attributes": described}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, OverflowError, ValueError):
        return False
    return True


def read_saved_data(path: str | Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 model zip (nothing is unpickled)."""
    path = Path(path)
    if path.suffix != ".zip" and not path.exists():
        path = path.with_suffix(".zip")
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("data"))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"no saved model at {path}") from error
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not an SB3 model file ({error})") from error


def safe_replacements(path: str | Path, learner: type, custom_objects: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    What SB3's ``load`` should use instead of unpickling: every pickled entry of the file rebuilt from its plain
    description (and the caller's ``custom_objects``).

    :param path: the model file
    :param learner: the class loading it
    :param custom_objects: the caller's replacements (they win)
    :raises ValueError: when the file was saved by another learner class, or holds pickled entries that cannot be
        rebuilt (then only ``trusted=True`` loads it)
    """
    data = read_saved_data(path)
    safe = data.get(SAFE_KEY) or {}
    saved_by = safe.get("learner")
    if saved_by is not None and saved_by != _class_path(learner):
        raise ValueError(f"{path} holds a {saved_by.rpartition(':')[2]}, not a {learner.__name__}: load it with "
                         f"{saved_by.rpartition(':')[2]}.load")
    replacements = {key: decode(value) for key, value in safe.get("attributes", {}).items()}
    replacements |= custom_objects or {}
    pickled = {key for key, value in data.items() if isinstance(value, dict) and ":serialized:" in value}
    missing = sorted(pickled - replacements.keys())
    if missing:
        raise ValueError(f"{path} holds pickled entries {missing} that cannot be rebuilt safely: unpickling runs "
                         f"code from the file, so load it with trusted=True only if you trust where it came from")
    return replacements
