"""Boundary checks: a value is what the argument needs, or a ``ValueError``/``TypeError`` that names the argument.

Exact types: no booleans for counts or numbers, no strings or complex numbers for numbers, no silent truncation
(``2.7`` is not a count). These are the checks every public boundary of the package uses (the worlds, the
contracts, the solvers, the views, the learners' options), at the boundary only, never in a hot loop. They sit in
the lowest room so that every room may use them (numpy only). The checks of array contents
(:func:`check_distributions`, :func:`check_indices`) also take torch tensors, through the operators and methods
both share, so that the batched torch paths are checked by the same code, with a few reductions over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: How far a row of probabilities may sum from 1: ``np.isclose(total, 1.0, atol=1e-6)`` (atol + rtol), what the
#: worlds and the contracts accepted before they shared this check; float32 rounding stays far inside it.
ROW_SUM_TOL = 1e-6 + 1e-5


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """
    ``value`` as an ``int`` if it is an integer (not a bool) within ``[low, high]``.

    :param name: the argument's name, for the message
    :param value: the value given
    :param low: smallest allowed value (``None``: no bound)
    :param high: largest allowed value (``None``: no bound)
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {_range(low, high)}, got {value}")
    return int(value)


def check_real(name: str, value: Any, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """
    ``value`` as a finite ``float`` if it is a real number (not a bool, string or complex) within its bounds.

    :param name: the argument's name, for the message
    :param value: the value given
    :param low: lower bound (``None``: none)
    :param high: upper bound (``None``: none)
    :param low_open: the lower bound itself is excluded
    :param high_open: the upper bound itself is excluded
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {_range(low, high, low_open, high_open)}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared as they are: ``1`` is not ``"1"``)."""
    if isinstance(value, (bool, np.bool_)) and not any(isinstance(c, bool) for c in choices) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def as_real_array(name: str, value: Any, ndim: int | None = None, shape: tuple[int, ...] | None = None,
                  finite: bool = True) -> np.ndarray:
    """
    ``value`` as a float64 array if it holds real numbers only (no booleans, strings, complex numbers, objects or
    ragged rows), with the given dimensions or shape.

    :param name: the argument's name, for the message
    :param value: the value given
    :param ndim: the number of dimensions (``None``: any)
    :param shape: the exact shape (``None``: any)
    :param finite: reject NaN and infinities
    """
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of numbers ({error})") from None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if finite and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return array


def check_instance(name: str, value: Any, expected: type) -> Any:
    """
    ``value`` if it is an instance of ``expected`` (a world, a model, a config).

    :param name: the argument's name, for the message
    :param value: the value given
    :param expected: the class it must be an instance of
    """
    if not isinstance(value, expected):
        raise TypeError(f"{name} must be a {expected.__name__}, got {type(value).__name__}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """
    A random generator's seed: ``None`` (fresh entropy) or an integer ``>= 0`` (NumPy refuses negative seeds with
    a message that names no argument).

    :param seed: the value given
    :param name: the argument's name, for the message
    """
    return None if seed is None else check_int(name, seed, 0)


def check_distributions(name: str, probs: Any) -> None:
    """
    Every row of ``probs`` (its last axis) is a probability distribution: finite, non-negative, summing to 1
    (within :data:`ROW_SUM_TOL`).

    :param name: the argument's name, for the message
    :param probs: a NumPy array or a torch tensor ``[..., K]`` of real numbers
    """
    if math.prod(probs.shape) == 0:
        return
    # A few reductions, as cheap as a check of a batch gets; NaN fails every comparison and an infinity the sums.
    low, (low_sum, high_sum) = probs.min(), _min_max(_row_sums(probs))
    if float(low) >= 0 and 1 - ROW_SUM_TOL <= float(low_sum) and float(high_sum) <= 1 + ROW_SUM_TOL:
        return
    table = _host(probs)
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    if np.any(table < 0):
        where = tuple(int(i) for i in np.argwhere(table < 0)[0])
        raise ValueError(f"{name} must be non-negative (a probability distribution per row); "
                         f"index {where} is {table[where]:.6g}")
    sums = table.sum(axis=-1)
    where = tuple(int(i) for i in np.argwhere(np.abs(sums - 1) > ROW_SUM_TOL)[0])
    raise ValueError(f"{name} rows must sum to 1 (a probability distribution per row: non-negative, summing to 1); "
                     f"index {where} sums to {sums[where]:.6g}")


def check_indices(name: str, values: Any, size: int, what: str = "indices") -> None:
    """
    Every entry of ``values`` is an integer in ``[0, size - 1]`` (booleans and floats are refused, not cast).

    :param name: the argument's name, for the message
    :param values: a NumPy array or a torch tensor of indices
    :param size: the number of valid indices (at least 1)
    :param what: what the indices stand for, for the message (e.g. ``"actions"``)
    """
    if _dtype_kind(values) not in ("i", "u"):
        raise ValueError(f"{name} must hold integer {what}, got dtype {values.dtype}")
    if math.prod(values.shape):
        low, high = _min_max(values)
        if int(low) < 0 or int(high) >= size:
            flat = _host(values).reshape(-1)
            raise ValueError(f"{name} {what} must lie in [0, {size - 1}], got {flat[(flat < 0) | (flat >= size)][0]}")


def _min_max(values: Any) -> tuple[Any, Any]:
    # torch finds both in one pass; NumPy arrays have no aminmax
    return values.aminmax() if hasattr(values, "aminmax") else (values.min(), values.max())


def _row_sums(probs: Any) -> Any:
    # NumPy and torch both reduce a short last axis about 20 times slower than they add its slices
    if probs.shape[-1] > 8:
        return probs.sum(-1)
    sums = probs[..., 0]
    for k in range(1, probs.shape[-1]):
        sums = sums + probs[..., k]
    return sums


def _dtype_kind(values: Any) -> str:
    """NumPy's dtype kind (``"b"``, ``"i"``, ``"u"``, ``"f"``, ``"c"``...) of an array or a torch tensor."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return dtype.kind
    try:  # torch's dtypes carry NumPy's names: torch.int64, torch.bool, torch.float32
        return np.dtype(str(dtype).removeprefix("torch.")).kind
    except TypeError:  # bfloat16 and the quantized types have no NumPy counterpart, and hold no integers
        return "?"


def _host(values: Any) -> np.ndarray:
    # A torch tensor (on any device) is copied to the host only to word an error; this module does not import torch.
    return np.asarray(values.detach().cpu()) if hasattr(values, "detach") else np.asarray(values)


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    if low is None and high is None:
        return "a number"
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
