"""The matrix reporter: result files in, README support matrix out (no jax, no gemma3)."""
