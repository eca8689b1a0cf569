"""What the runtime gives back: a Prediction per image, and a Result per streamed input (prediction or error)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Prediction:
    """Top-k classes for one image."""

    source: str
    labels: list[str]
    indices: list[int]
    scores: list[float]

    def to_dict(self) -> dict:
        return {"source": self.source, "top": [{"label": l, "index": i, "score": s}
                                               for l, i, s in zip(self.labels, self.indices, self.scores)]}


@dataclass
class Result:
    """One input's outcome: its prediction (classifiers) or outputs (backbones), or the error that stopped it."""

    index: int
    source: str
    prediction: Prediction | None = None
    outputs: list[np.ndarray] | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # ms: load+preprocess (in a worker), infer (its batch)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "source": self.source}
        if self.error is not None:
            out["error"] = self.error
        elif self.prediction is not None:
            out.update(self.prediction.to_dict(), source=self.source)
        return out
