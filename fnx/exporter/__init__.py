"""Export stage: deploy form (BN folded), ONNX and TFLite artifacts, manifests and parity checks."""

from fnx.exporter.fold import deploy_form, fold_bn

__all__ = ["deploy_form", "fold_bn"]
