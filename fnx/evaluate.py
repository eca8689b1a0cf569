"""`fnx eval`: top-1/top-5 of a PyTorch checkpoint or any artifact on a labelled image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.progress import Steps
from fnx.runtime.preprocess import list_images, preprocess, to_layout



def labelled_images(data: Path, labels: list[str] | None) -> list[tuple[Path, int]]:
    """Return [(path, class index)] of a class-per-subfolder folder, indices taken from the model's labels."""
    data = Path(data)
    paths = list_images(data)
    if not paths:
        raise FnxError(f"{data} holds no images (jpg, jpeg, png, bmp, webp)")
    folders = sorted({p.relative_to(data).parts[0] for p in paths if len(p.relative_to(data).parts) > 1})
    labels = labels or folders
    missing = [f for f in folders if f not in labels]
    if missing:
        raise FnxError(f"class folder {missing[0]!r} is not among the model's labels ({', '.join(labels[:10])}...)")
    return [(p, labels.index(p.relative_to(data).parts[0])) for p in paths if len(p.relative_to(data).parts) > 1]


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

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(batch)).numpy()


class _SessionPredictor:
    def __init__(self, path: Path, threads: int | None):
        from fnx.runtime import load

        self.session = load(path, device="cpu", threads=threads)
        m = self.session.manifest
        self.labels, self.spec, self.layout = self.session.labels, self.session.preprocessing, self.session.layout
        fmt, precision = (m.artifact.format, m.artifact.precision) if m else (path.suffix[1:], "unknown precision")
        self.kind = f"{fmt} {precision} ({self.session.engine_name})"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(batch)[0]


def evaluate(target: str | Path, data: str | Path, limit: int | None = None, threads: int | None = None,
             steps: Steps | None = None, batch: int = 32) -> dict:
    """Return {"top1", "top5", "n", "target", "kind"} of a checkpoint or artifact on a labelled folder."""
    steps = steps or Steps(quiet=True)
    target = Path(target)
    if not target.is_file():
        raise FnxError(f"{target} does not exist")
    from fnx.formats import FILE_FORMATS

    artifact = target.suffix.lower() in {f.suffix for f in FILE_FORMATS.values()}
    predictor = _SessionPredictor(target, threads) if artifact else _TorchPredictor(target)
    items = labelled_images(Path(data), predictor.labels)
    if limit:
        items = items[:: max(1, len(items) // limit)][:limit]
    top1 = top5 = 0
    bar, task = steps.progress(f"eval {target.name}", len(items))
    with bar:
        for i in range(0, len(items), batch):
            chunk = items[i : i + batch]
            x = to_layout(np.stack([preprocess(p, predictor.spec) for p, _ in chunk]), predictor.layout)
            logits = predictor(x)
            y = np.array([c for _, c in chunk])
            order = np.argsort(-logits, 1)
            top1 += int((order[:, 0] == y).sum())
            top5 += int((order[:, :5] == y[:, None]).any(1).sum())
            bar.update(task, advance=len(chunk))
    n = len(items)
    return {"target": str(target), "kind": predictor.kind, "n": n, "top1": top1 / n, "top5": top5 / n}
