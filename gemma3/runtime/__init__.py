"""How JAX runs here: per-CPU compiler choices, the persistent compile cache, multi-host
start-up, the device mesh and the partition rules, progress lines. Below the model: layers ask
it whether to pad a 1-row dot; it knows nothing of the model's classes."""
