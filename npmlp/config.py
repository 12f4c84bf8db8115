"""The training configuration: one frozen dataclass, validated in one place.

A grid point is `dataclasses.replace(base, **point)`; `asdict(config)` goes into every result and
model file, so a number can always be traced back to the exact settings that produced it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field and the value."""


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (128, 64)  # hidden layer widths, input side first
    dropout: float = 0.2  # drop probability after each hidden ReLU, training only
    sigmoid: bool = True  # sigmoid head: predictions in (0, 1), like the target score
    lr: float = 1e-3  # Adam step size
    beta1: float = 0.9  # Adam first-moment decay
    beta2: float = 0.999  # Adam second-moment decay
    eps: float = 1e-8  # Adam: added to sqrt of the bias-corrected second moment
    weight_decay: float = 0.0  # decoupled (AdamW) decay; 0 is plain Adam
    batch_size: int = 32  # rows per optimizer step; the last partial batch is used
    epochs: int = 100  # upper bound on passes over the training split
    patience: int = 10  # stop after this many epochs in a row without val improvement
    min_delta: float = 0.0  # an improvement must beat the best val MSE by more than this
    seed: int = 0  # model seed: init, shuffle and dropout streams
    split_seed: int = 42  # data split seed, independent of the model seed
    val_fraction: float = 0.15  # of all rows; the split is 70/15/15 by default
    test_fraction: float = 0.15
    dtype: str = "float32"  # training precision; float64 for gradient checks

    def __post_init__(self):
        # Accept lists (JSON, TOML) but store a tuple so the config stays hashable and frozen.
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for name, (ok, need) in _RULES.items():
            value = getattr(self, name)
            if not _typed(name, value) or not ok(value):
                raise ConfigError(f"config field {name!r}: bad value {value!r} (need {need})")
            if _TYPES[name] == "float":
                object.__setattr__(self, name, float(value))  # 1 and 1.0 record alike
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"config fields 'val_fraction' + 'test_fraction': bad value "
                f"{self.val_fraction + self.test_fraction!r} (need < 1)"
            )

    @classmethod
    def from_dict(cls, values: dict, base: "Config | None" = None) -> "Config":
        """A config from plain values (JSON, TOML, CLI), rejecting unknown names."""
        known = {f.name for f in dataclasses.fields(cls)}
        for name in values:
            if name not in known:
                raise ConfigError(f"unknown config field {name!r} (known: {', '.join(sorted(known))})")
        return dataclasses.replace(base or cls(), **values)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}


def _typed(name: str, value) -> bool:
    kind = _TYPES[name]
    if kind == "int":
        return _is_int(value)
    if kind == "float":
        return _is_real(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    return isinstance(value, tuple) and all(_is_int(h) for h in value)


# One declarative table of what each field accepts: (predicate, what the message asks for).
_RULES = {
    "hidden": (lambda v: len(v) >= 1 and all(h >= 1 for h in v), "one or more positive ints"),
    "dropout": (lambda v: 0 <= v <= 0.99, "0 <= dropout <= 0.99"),
    "sigmoid": (lambda v: True, "true or false"),
    "lr": (lambda v: v > 0, "a positive number"),
    "beta1": (lambda v: 0 <= v < 1, "0 <= beta1 < 1"),
    "beta2": (lambda v: 0 <= v < 1, "0 <= beta2 < 1"),
    "eps": (lambda v: v > 0, "a positive number"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "batch_size": (lambda v: v >= 1, "an int >= 1"),
    "epochs": (lambda v: v >= 1, "an int >= 1"),
    "patience": (lambda v: v >= 1, "an int >= 1"),
    "min_delta": (lambda v: v >= 0, "a number >= 0"),
    "seed": (lambda v: v >= 0, "an int >= 0"),
    "split_seed": (lambda v: v >= 0, "an int >= 0"),
    "val_fraction": (lambda v: 0 < v < 1, "0 < fraction < 1"),
    "test_fraction": (lambda v: 0 < v < 1, "0 < fraction < 1"),
    "dtype": (lambda v: v in ("float32", "float64"), "'float32' or 'float64'"),
}
