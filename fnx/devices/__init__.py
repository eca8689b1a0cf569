"""Target devices: deployment profiles and detection of the machine we run on (no torch, no TF)."""

from __future__ import annotations

from fnx.devices.detect import cpu_count, detect, detection_report
from fnx.devices.profiles import PROFILES, DeviceProfile, get_profile

__all__ = ["PROFILES", "DeviceProfile", "cpu_count", "detect", "detection_report", "get_profile"]
