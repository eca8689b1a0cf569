"""Scoring shared by the single-process and the Ray evaluation: per-batch top-5, then one summary per target.

Both paths produce the same arrays (each image's top-5 class indices, -1 where the image could not be read) and
hand them to `summarize`, so their figures cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fnx.errors import FnxError
from fnx.imagefolder import ImageFolder
from fnx.runtime.preprocess import preprocess, to_layout

TOP_K = 5


def subset(items: list, limit: int | None) -> list:
    """Return an evenly spaced subset of at most limit items (all of them without a limit)."""
    return items[:: max(1, len(items) // limit)][:limit] if limit else items


def predict_paths(predictor, paths: Sequence[str | Path], modes: Sequence[str]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Return ({mode: (len(paths), TOP_K) class indices, -1 rows for unreadable images}, [{"source", "error"}])."""
    prepared: dict[str, list[np.ndarray]] = {m: [] for m in modes}
    readable, errors = [], []
    for i, p in enumerate(paths):
        try:
            arrays = {m: preprocess(Path(p), predictor.spec, mode=m) for m in modes}
        except FnxError as e:
            errors.append({"source": str(p), "error": str(e)})
            continue
        for m in modes:
            prepared[m].append(arrays[m])
        readable.append(i)
    top = {m: np.full((len(paths), TOP_K), -1, dtype=np.int64) for m in modes}
    for m in modes if readable else ():
        logits = predictor(to_layout(np.stack(prepared[m]), predictor.layout))
        k = min(TOP_K, logits.shape[1])
        top[m][readable, :k] = np.argsort(-logits, axis=1)[:, :k]
    return top, errors


def _scores(top: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return top[:, 0] == truth, (top == truth[:, None]).any(axis=1)


def summarize(target: str, kind: str, top: dict[str, np.ndarray], truth: np.ndarray, folder_class: np.ndarray,
              classes: list[str], mode: str, errors: list[dict], predicted_names: list[str | None] | None = None,
              reference: list[str | None] | None = None) -> dict:
    """Return one target's figures: top-1/top-5 (the requested mode), per-class top-1 and, given this target's and a
    reference's predicted class per image (`predicted_names_of`), the share of images whose top-1 classes match."""
    readable = top[mode][:, 0] >= 0
    n = int(readable.sum())
    if n == 0:
        raise FnxError(f"none of the {len(truth)} images could be read for {target}; check the folder")
    per_mode = {}
    for m, t in top.items():
        t1, t5 = _scores(t[readable], truth[readable])
        per_mode[m] = {"top1": float(t1.mean()), "top5": float(t5.mean())}
    hit = _scores(top[mode][readable], truth[readable])[0]
    per_class = {}
    for c, name in enumerate(classes):
        sel = folder_class[readable] == c
        per_class[name] = {"n": int(sel.sum()), "top1": float(hit[sel].mean()) if sel.any() else None}
    out = {"target": target, "kind": kind, "n": n, **per_mode[mode], "preprocess": mode, "per_class": per_class,
           "errors": errors}
    if len(top) > 1:
        out["modes"] = per_mode
        both = readable & (top["fast"][:, 0] >= 0)
        out["agreement"] = float((top["exact"][both, 0] == top["fast"][both, 0]).mean())
    if reference is not None and predicted_names is not None:
        names = predicted_names
        common = [i for i in range(len(truth)) if names[i] is not None and reference[i] is not None]
        out["reference_agreement"] = float(np.mean([names[i] == reference[i] for i in common])) if common else None
    return out


def predicted_names_of(top: np.ndarray, labels: list[str] | None, folder_names: dict[int, str] | None = None) -> list[str | None]:
    """Return each image's top-1 class as a name: the class folder it stands for, else its label, else its index
    as text; None where unread. Folder names make models with and without labels comparable."""
    folder_names = folder_names or {}
    return [None if i < 0 else folder_names.get(i) or (labels[i] if labels and i < len(labels) else str(i))
            for i in top[:, 0].tolist()]
