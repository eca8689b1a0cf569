"""`fnx eval`: top-1/top-5, per-class accuracy and agreement with a reference, for checkpoints and artifacts on a
labelled image folder; in this process, or on a Ray cluster (`ray=`) with the same figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fnx.errors import FnxError
from fnx.evaluation.predictors import EVAL_RUN, is_artifact, open_predictor
from fnx.evaluation.scoring import predict_paths, predicted_names_of, subset, summarize
from fnx.imagefolder import class_index, image_folder
from fnx.progress import Steps
from fnx.runtime.placement import RunOptions

__all__ = ["evaluate", "evaluate_many", "Predictions", "target_classes"]


@dataclass
class Predictions:
    """One target's predictions over the evaluated images, in their order: top-5 indices per mode (-1: unread)."""

    kind: str
    labels: list[str] | None
    class_ids: list[str] | None
    top: dict[str, np.ndarray]
    errors: list[dict]


def target_classes(target: Path) -> tuple[list[str] | None, list[str] | None]:
    """Return a target's (labels, class IDs) from its manifest or sidecar, without loading the model."""
    if is_artifact(target):
        from fnx.manifest import read_manifest

        m = read_manifest(target)
        if m is not None and any(o.kind == "feature_map" for o in m.outputs):
            raise FnxError(f"{target.name} is a --features backbone (feature maps, no class scores): fnx eval scores "
                           f"classifiers; evaluate the classifier export of the model")
        return (m.labels, m.class_ids) if m else (None, None)
    from fnx.models.sidecar import read_sidecar

    side = read_sidecar(target)
    if side is None:
        raise FnxError(f"{target} has no sidecar naming its model ({target.with_suffix('.json')}); evaluate an export of it instead")
    return side.labels, None


def _predict_here(target: Path, paths: list[Path], modes: tuple[str, ...], batch: int, steps: Steps,
                  run: RunOptions) -> Predictions:
    predictor = open_predictor(target, run)
    tops: dict[str, list[np.ndarray]] = {m: [] for m in modes}
    errors: list[dict] = []
    bar, task = steps.progress(f"eval {target.name}", len(paths))
    with bar:
        for i in range(0, len(paths), batch):
            top, errs = predict_paths(predictor, paths[i : i + batch], modes)
            for m in modes:
                tops[m].append(top[m])
            errors += errs
            bar.update(task, advance=len(paths[i : i + batch]))
    return Predictions(predictor.kind, predictor.labels, predictor.class_ids,
                       {m: np.concatenate(t) for m, t in tops.items()}, errors)


def evaluate_many(targets: Sequence[str | Path], data: str | Path, limit: int | None = None,
                  run: RunOptions = EVAL_RUN, steps: Steps | None = None, batch: int = 32, mode: str = "exact",
                  reference: str | Path | None = None, ray: str | None = None, workers: int | None = None) -> dict:
    """Evaluate each target on the same images; returns {"data", "images", "classes", "reference", "runner",
    "results": [one `summarize` dict per target, in order]}. Artifacts run as `run` says (default: CPU).

    reference (a checkpoint or artifact, evaluated too) adds each result's "reference_agreement". ray ("auto" or a
    cluster address) runs the predictions as a Ray Data job (the scale extra) with `workers` actors.
    """
    steps = steps or Steps(quiet=True)
    targets = [Path(t) for t in targets]
    if not targets:
        raise FnxError("name at least one checkpoint or artifact to evaluate")
    ref = Path(reference) if reference is not None else None
    order = list(dict.fromkeys(targets + ([ref] if ref else [])))
    for t in order:
        if not t.is_file():
            raise FnxError(f"{t} does not exist")
    from fnx.evaluation.predictors import is_artifact
    from fnx.runtime.engines import check_engine_fits

    check_engine_fits([t for t in order if is_artifact(t)], run.engine)  # every artifact's engine before any work
    folder = image_folder(data, what="fnx eval (to classify unlabelled images use fnx run)")
    for t in order:  # every target must know every class folder before any work starts
        class_index(folder, *target_classes(t))
    items = subset(folder.items, limit)
    paths = [p for p, _ in items]
    folder_class = np.array([c for _, c in items], dtype=np.int64)
    modes = ("exact", "fast") if mode == "fast" else (mode,)
    if ray is None:
        runs = {t: _predict_here(t, paths, modes, batch, steps, run) for t in order}
    else:
        from fnx.evaluation.on_ray import predict_on_ray

        runs = predict_on_ray(order, paths, modes, address=ray, workers=workers, run=run, batch=batch, steps=steps)

    def names(r: Predictions) -> list[str | None]:
        index = class_index(folder, r.labels, r.class_ids)
        return predicted_names_of(r.top[mode], r.labels, {int(i): c for i, c in zip(index, folder.classes)})

    ref_names = names(runs[ref]) if ref else None
    results = []
    for t in targets:
        r = runs[t]
        truth = class_index(folder, r.labels, r.class_ids)[folder_class]
        results.append(summarize(str(t), r.kind, r.top, truth, folder_class, folder.classes, mode, r.errors,
                                 names(r), ref_names))
    return {"data": str(data), "images": len(paths), "classes": folder.classes,
            "reference": str(ref) if ref else None, "runner": "ray" if ray is not None else "local", "results": results}


def evaluate(target: str | Path, data: str | Path, limit: int | None = None, run: RunOptions = EVAL_RUN,
             steps: Steps | None = None, batch: int = 32, mode: str = "exact") -> dict:
    """Return {"top1", "top5", "n", "target", "kind", "per_class", "errors", ...} of one checkpoint or artifact.

    mode "fast" scores both preprocessing modes on the same images: "modes" gives each one's top-1/top-5 and
    "agreement" the share of images whose top-1 class is the same under both (what `fast` costs, on your data).
    An image that cannot be read is reported in "errors" ([{"source", "error"}]) and left out of the scores.
    """
    return evaluate_many([target], data, limit=limit, run=run, steps=steps, batch=batch, mode=mode)["results"][0]
