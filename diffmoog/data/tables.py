"""The two CSV tables: physical params (+ retries) and the flat normalised vector.

params_dataset.csv:    id, every free param `node.param` in physical units (categoricals as
                       the choice name), then `retries` (see diffmoog.data.items).
params_normalized.csv: id, then chain.vector_slices() columns: `node.param` for continuous
                       params, `node.param=choice` for each choice of a categorical.
Floats are written with 9 significant digits, so float32 values survive the round trip.
"""
from __future__ import annotations

import numpy as np

RETRIES = "retries"
FLOAT = "%.9g"  # 9 significant digits: float32 values survive the round trip


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


def rows(chain, params: dict, retries, ids: list[str]) -> tuple[str, str]:
    """CSV lines (physical, normalised) for one batch of normalised params."""
    physical = chain.to_physical(params)
    columns, formats = [ids], ["%s"]
    for fp in chain.free_params:
        value = physical[fp.key].cpu().numpy()
        if fp.param.is_categorical:
            columns.append(np.asarray(fp.param.choices)[value].tolist())
            formats.append("%s")
        else:
            columns.append(value.astype(np.float64).tolist())
            formats.append(FLOAT)
    columns.append(np.asarray(retries).tolist())
    formats.append("%d")
    vector = chain.to_vector(params).cpu().numpy().astype(np.float32).astype(np.float64)
    return _join(columns, formats), _join([ids, *vector.T.tolist()], ["%s"] + [FLOAT] * vector.shape[1])


def _join(columns: list[list], formats: list[str]) -> str:
    """One %-format per row: the cost is per row, not per value."""
    line = ",".join(formats) + "\n"
    return "".join([line % row for row in zip(*columns)])
