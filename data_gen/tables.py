"""The two CSV tables: physical params (+ retries) and the flat normalised vector.

params_dataset.csv:    id, every free param `node.param` in physical units (categoricals as
                       the choice name), then `retries` (see data_gen.items).
params_normalized.csv: id, then chain.vector_slices() columns: `node.param` for continuous
                       params, `node.param=choice` for each choice of a categorical.
Floats are written with 9 significant digits, so float32 values survive the round trip.
"""
from __future__ import annotations

import numpy as np

RETRIES = "retries"


def params_header(chain) -> list[str]:
    return ["id", *chain.param_keys, RETRIES]


def vector_columns(chain) -> list[str]:
    columns = []
    for fp in chain.free_params:
        if fp.param.is_categorical:
            columns += [f"{fp.key}={choice}" for choice in fp.param.choices]
        else:
            columns.append(fp.key)
    return columns


def normalized_header(chain) -> list[str]:
    return ["id", *vector_columns(chain)]


def header_line(columns: list[str]) -> str:
    return ",".join(columns) + "\n"


def _fmt(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%.9g", values.astype(np.float64))


def rows(chain, params: dict, retries, ids: list[str]) -> tuple[str, str]:
    """CSV lines (physical, normalised) for one batch of normalised params."""
    physical = chain.to_physical(params)
    columns = [np.asarray(ids)]
    for fp in chain.free_params:
        value = physical[fp.key].cpu().numpy()
        columns.append(np.asarray(fp.param.choices)[value] if fp.param.is_categorical else _fmt(value))
    columns.append(np.asarray(retries).astype(str))
    vector = chain.to_vector(params).cpu().numpy().astype(np.float32)
    normal = [np.asarray(ids)] + [_fmt(vector[:, j]) for j in range(vector.shape[1])]
    return _join(columns), _join(normal)


def _join(columns: list[np.ndarray]) -> str:
    return "".join(",".join(row) + "\n" for row in zip(*(c.tolist() for c in columns)))
