"""Orchestration of `python -m harness`: the command line, the pre-checks, the model-by-model
runner, the result file."""
