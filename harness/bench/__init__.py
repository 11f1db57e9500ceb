"""`nox -s bench`: JAX against transformers on the same checkpoint, side by side in one run."""
