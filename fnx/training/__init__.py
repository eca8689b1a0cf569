"""The PyTorch side beyond export (needs the export extra): `fit` (fnx train: AdamW, cosine with warm-up, label
smoothing, best-on-val checkpoint and sidecar), `qat` (fnx train --qat: PT2E fake quantization on the deploy form),
`data` (lazy decode, seeded crops), `state` (the resumable .last.pt) and `distributed` (process groups, elastic
launch)."""
