"""fnx.runtime."""
