"""int8 calibration as a library: images (data), options, the Quantizer interface, the guard, the report.

Imports nothing from fnx.exporter: each export format hands the guard its own Quantizer.
"""
