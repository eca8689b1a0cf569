"""fnx: take a FasterNet checkpoint to an edge device and prove it still computes the same thing."""

from fnx.errors import FnxError

__version__ = "0.1.0"
__all__ = ["FnxError", "__version__"]
