"""The hardware-compatibility harness: proves, model by model and machine by machine, that the
JAX model loads, matches the transformers reference, generates and fits in memory.

`python -m harness` runs it all (see harness/__main__.py); the checks themselves are pytest
tests under harness/checks/, one pytest process per model.
"""
