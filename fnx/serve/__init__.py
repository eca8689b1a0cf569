"""`fnx serve`: artifacts behind the Open Inference Protocol v2 (KServe / Triton REST), torch-free.

`protocol` reads and writes the v2 bodies, `batcher` batches one model's requests onto its Session, `app` is the
ASGI application (starlette), `guards` the body limit and bearer token, `images` fnx's encoded-image route,
`metrics` the Prometheus counters, `budget` the connection budget under the open-file limit, `connections` the
timeouts and the budget on uvicorn's h11 protocol, `logs` bounds repeated log messages, `server` opens the artifacts
and runs uvicorn. Needs the serve extra.
"""
