"""fnx.calibration."""
