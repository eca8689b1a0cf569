"""The demo: real digit scans from scikit-learn and a FasterNet-T0 trained on them (shipped, reproducible)."""
