"""Installed versions of fnx and the packages it works with, for manifests, benchmarks and reports. Torch-free."""

from __future__ import annotations

from importlib import metadata

from fnx import __version__


def versions(dists: tuple[str, ...], missing: str | None = None) -> dict[str, str]:
    """Return {distribution: version} for dists ("fnx" is this package); absent ones are left out, or given `missing`."""
    out: dict[str, str] = {}
    for dist in dists:
        if dist == "fnx":
            out[dist] = __version__
            continue
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if missing is not None:
                out[dist] = missing
    return out
