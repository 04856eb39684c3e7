"""Boundary checks: a value is what the argument needs, or a ``ValueError``/``TypeError`` that names the argument.

Exact types: no booleans for counts or numbers, no strings or complex numbers for numbers, no silent truncation
(``2.7`` is not a count). These are the checks every public boundary of the package uses (the worlds, the
contracts, the solvers, the views, the learners' options), at the boundary only, never in a hot loop. They sit in
the lowest room so that every room may use them (numpy only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    if low is None and high is None:
        return "a number"
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
