"""fnx.devices."""
