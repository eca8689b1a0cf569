"""`fnx eval`: top-1/top-5 of a PyTorch checkpoint or any artifact on a labelled image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.progress import Steps
from fnx.imagefolder import image_folder
from fnx.runtime.preprocess import preprocess, to_layout



def labelled_images(data: Path, labels: list[str] | None,
                    class_ids: list[str] | None = None) -> list[tuple[Path, int]]:
    """Return [(path, class index)] of a class-per-subfolder folder, indices taken from the model's classes.

    Folders are matched by class ID first (ImageNet's `n01440764/` layout), then by label.
    """
    folder = image_folder(data, what="fnx eval (to classify unlabelled images use fnx run)")
    names = [list(class_ids or []), list(labels or folder.classes)]
    keys = next((n for n in names if n and all(c in n for c in folder.classes)), None)
    if keys is None:
        known = names[1] if not names[0] else names[0]
        missing = next(c for c in folder.classes if c not in known)
        raise FnxError(f"class folder {missing!r} is not among the model's classes ({', '.join(known[:6])}, ...): "
                       f"name each folder by a class {'ID or ' if names[0] else ''}label of the model")
    return [(p, keys.index(folder.classes[i])) for p, i in folder.items]


class _TorchPredictor:
    def __init__(self, path: Path):
        import torch

        from fnx.models import create_model
        from fnx.models.sidecar import read_sidecar

        side = read_sidecar(path)
        if side is None:
            raise FnxError(f"{path} has no sidecar naming its model ({path.with_suffix('.json')}); evaluate an export of it instead")
        self.torch = torch
        self.model = create_model(side.model, weights=str(path))
        self.labels, self.spec, self.layout, self.kind = side.labels, side.preprocessing, "NCHW", "pytorch fp32"
        self.class_ids = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(batch)).numpy()


class _SessionPredictor:
    def __init__(self, path: Path, threads: int | None, engine: str | None = None,
                 inference_precision: str | None = None):
        from fnx.runtime import load

        self.session = load(path, device="cpu", threads=threads, engine=engine, inference_precision=inference_precision)
        m = self.session.manifest
        self.labels, self.spec, self.layout = self.session.labels, self.session.preprocessing, self.session.layout
        self.class_ids = m.class_ids if m else None
        fmt, precision = (m.artifact.format, m.artifact.precision) if m else (path.suffix[1:], "unknown precision")
        self.kind = f"{fmt} {precision} ({self.session.engine_name})"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(batch)[0]


def evaluate(target: str | Path, data: str | Path, limit: int | None = None, threads: int | None = None,
             steps: Steps | None = None, batch: int = 32, mode: str = "exact", engine: str | None = None,
             inference_precision: str | None = None) -> dict:
    """Return {"top1", "top5", "n", "target", "kind", "errors"} of a checkpoint or artifact on a labelled folder.

    mode "fast" scores both preprocessing modes on the same images: "modes" gives each one's top-1/top-5 and
    "agreement" the share of images whose top-1 class is the same under both (what `fast` costs, on your data).
    An image that cannot be read is reported in "errors" ([{"source", "error"}]) and left out of the scores.
    """
    steps = steps or Steps(quiet=True)
    target = Path(target)
    if not target.is_file():
        raise FnxError(f"{target} does not exist")
    from fnx.formats import FILE_FORMATS

    artifact = target.suffix.lower() in {f.suffix for f in FILE_FORMATS.values()}
    predictor = _SessionPredictor(target, threads, engine, inference_precision) if artifact else _TorchPredictor(target)
    items = labelled_images(Path(data), predictor.labels, predictor.class_ids)
    if limit:
        items = items[:: max(1, len(items) // limit)][:limit]
    modes = ("exact", "fast") if mode == "fast" else (mode,)
    scores = {m: {"top1": 0, "top5": 0} for m in modes}
    first: dict[str, list[np.ndarray]] = {m: [] for m in modes}
    n, errors = 0, []
    bar, task = steps.progress(f"eval {target.name}", len(items))
    with bar:
        for i in range(0, len(items), batch):
            arrays: dict[str, list] = {m: [] for m in modes}
            labels = []
            for p, c in items[i : i + batch]:
                try:
                    prepared = {m: preprocess(p, predictor.spec, mode=m) for m in modes}
                except FnxError as e:
                    errors.append({"source": str(p), "error": str(e)})
                    continue
                for m in modes:
                    arrays[m].append(prepared[m])
                labels.append(c)
            if labels:
                y = np.array(labels)
                for m in modes:
                    order = np.argsort(-predictor(to_layout(np.stack(arrays[m]), predictor.layout)), 1)
                    scores[m]["top1"] += int((order[:, 0] == y).sum())
                    scores[m]["top5"] += int((order[:, :5] == y[:, None]).any(1).sum())
                    first[m].append(order[:, 0])
                n += len(labels)
            bar.update(task, advance=len(items[i : i + batch]))
    if n == 0:
        raise FnxError(f"none of the {len(items)} images under {data} could be read; check the folder")
    per_mode = {m: {"top1": v["top1"] / n, "top5": v["top5"] / n} for m, v in scores.items()}
    out = {"target": str(target), "kind": predictor.kind, "n": n, **per_mode[mode], "preprocess": mode, "errors": errors}
    if len(modes) > 1:
        out["modes"] = per_mode
        out["agreement"] = float((np.concatenate(first["exact"]) == np.concatenate(first["fast"])).mean())
    return out
