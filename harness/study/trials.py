"""Pairwise (2AFC) trials in long format, one row per answer, and how they are read.

:class:`Trials` reads a long table (observer, the two conditions, the answer) or expands a count
matrix ``C[i, j]`` (times ``i`` was preferred to ``j``, HiLLIE, Zhao et al., Sec. 4.4) into single
trials; it gives the count matrices that the Thurstone Case V fit (:mod:`llbench.study.case_v`)
takes, pooled or per observer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from llbench.study.case_v import ScalingError, _check_counts

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def parse_bool(value: Any, where: str = "") -> bool:
    """True for true/1/yes/y/t, False for false/0/no/n/f (case-insensitive); else an error."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (float, np.floating)) and value in (0.0, 1.0):
        return bool(value)
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ScalingError(
        f"cannot read {value!r}{' ' + where if where else ''} as a yes/no answer "
        "(use true/false, 1/0 or yes/no)"
    )


@dataclass
class Trials:
    """Pairwise trials in long format: one row per answer.

    ``frame`` has columns ``observer``, ``a``, ``b``, ``winner`` (``a`` or ``b``'s condition) and
    ``item`` (what was judged: content and pair; answers on one item are compared for agreement).
    """

    frame: pd.DataFrame
    conditions: list[str]

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame,
        *,
        observer: str | None = "observer",
        a: str = "a",
        b: str = "b",
        chosen: str | None = None,
        a_chosen: str | None = None,
        item: str | None = None,
        conditions: Sequence[str] | None = None,
    ) -> Trials:
        """Read a long table. Name the winner with ``chosen`` (a column holding the chosen
        condition) or ``a_chosen`` (a column that is true when ``a`` won)."""
        if (chosen is None) == (a_chosen is None):
            raise ScalingError("give exactly one of chosen= (winning condition) or a_chosen=")
        needed = [col for col in (observer, a, b, chosen, a_chosen, item) if col is not None]
        missing = [col for col in needed if col not in data.columns]
        if missing:
            raise ScalingError(
                f"column(s) {', '.join(map(repr, missing))} not in the table; "
                f"it has: {', '.join(map(str, data.columns))}"
            )
        if len(data) == 0:
            raise ScalingError("the table has no trials")
        col_a = data[a].astype(str).to_numpy()
        col_b = data[b].astype(str).to_numpy()
        if np.any(col_a == col_b):
            row = int(np.flatnonzero(col_a == col_b)[0])
            raise ScalingError(f"row {row + 1} compares condition {col_a[row]!r} with itself")
        if chosen is not None:
            ch = data[chosen].astype(str).to_numpy()
            bad = (ch != col_a) & (ch != col_b)
            if np.any(bad):
                row = int(np.flatnonzero(bad)[0])
                raise ScalingError(
                    f"row {row + 1}: chosen {ch[row]!r} is neither {col_a[row]!r} nor {col_b[row]!r}"
                )
            winner = ch
        else:
            flags = [
                parse_bool(v, f"in column {a_chosen!r}, row {k + 1}")
                for k, v in enumerate(data[a_chosen].tolist())
            ]
            winner = np.where(np.asarray(flags, dtype=bool), col_a, col_b)
        obs = (
            data[observer].astype(str).to_numpy()
            if observer is not None
            else np.arange(len(data)).astype(str)
        )
        if item is not None:
            it = data[item].astype(str).to_numpy()
        else:
            it = np.array(
                [" | ".join(sorted(p)) for p in zip(col_a, col_b, strict=True)], dtype=object
            )
        frame = pd.DataFrame(
            {"observer": obs, "a": col_a, "b": col_b, "winner": winner, "item": it}
        )
        present = sorted(set(col_a) | set(col_b))
        if conditions is None:
            conds = present
        else:
            conds = [str(x) for x in conditions]
            unknown = sorted(set(present) - set(conds))
            if unknown:
                raise ScalingError(f"conditions not in the given list: {', '.join(unknown)}")
        return cls(frame, conds)

    @classmethod
    def from_counts(cls, counts: Any, conditions: Sequence[str] | None = None) -> Trials:
        """Expand a count matrix into single trials, each from its own anonymous observer."""
        c = _check_counts(counts)
        if np.any(c != np.round(c)):
            raise ScalingError("a count matrix must hold whole numbers of answers")
        n = c.shape[0]
        conds = (
            [str(x) for x in conditions] if conditions is not None else [str(i) for i in range(n)]
        )
        if len(conds) != n:
            raise ScalingError(f"{len(conds)} condition names for a {n}x{n} count matrix")
        rows = []
        for i in range(n):
            for j in range(n):
                for _ in range(int(c[i, j])):
                    rows.append((conds[i], conds[j], conds[i]))
        frame = pd.DataFrame(rows, columns=["a", "b", "winner"])
        frame.insert(0, "observer", [f"trial{k}" for k in range(len(frame))])
        frame["item"] = [" | ".join(sorted(p)) for p in zip(frame["a"], frame["b"], strict=True)]
        return cls(frame, conds)

    @property
    def observers(self) -> list[str]:
        return list(dict.fromkeys(self.frame["observer"]))

    def _loser(self) -> np.ndarray:
        f = self.frame
        return np.where(f["winner"] == f["a"], f["b"], f["a"])

    def observer_counts(self) -> tuple[list[str], np.ndarray]:
        """Per-observer count matrices, shape ``(observers, n, n)``."""
        obs = self.observers
        o_index = {o: k for k, o in enumerate(obs)}
        c_index = {c: k for k, c in enumerate(self.conditions)}
        out = np.zeros((len(obs), len(self.conditions), len(self.conditions)))
        oi = self.frame["observer"].map(o_index).to_numpy()
        wi = self.frame["winner"].map(c_index).to_numpy()
        li = np.array([c_index[x] for x in self._loser()], dtype=int)
        np.add.at(out, (oi, wi, li), 1.0)
        return obs, out

    def counts(self) -> np.ndarray:
        """The count matrix ``C[i, j]``: how often ``i`` was preferred to ``j``."""
        c_index = {c: k for k, c in enumerate(self.conditions)}
        out = np.zeros((len(self.conditions), len(self.conditions)))
        wi = self.frame["winner"].map(c_index).to_numpy()
        li = np.array([c_index[x] for x in self._loser()], dtype=int)
        np.add.at(out, (wi, li), 1.0)
        return out
