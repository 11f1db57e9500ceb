"""The transformers reference: run in its own process (`python -m harness.reference`) before the
JAX checks, its outputs stored on disk (store.py) so that the two never hold memory at once."""
