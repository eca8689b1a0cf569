"""The toy target's format: the deploy-form model traced to TorchScript. No int8 (the base class refuses it)."""

from fnx.exporter.formats import ArtifactFormat, register_format
from fnx_toy_target import FILE


@register_format
class ToyScriptFormat(ArtifactFormat):
    name, file, converters, requires = "toyscript", FILE, ("torch",), ("torch",)

    def export_float(self, model, path, built, opts) -> None:
        import torch

        x = torch.zeros(opts.batch, built.model.in_chans, built.img_size, built.img_size)
        torch.jit.save(torch.jit.trace(model, x), str(path))
