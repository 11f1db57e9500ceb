"""Shared test setup: fp32 matmuls at full precision, so parity bounds mean what they say."""

import os

import jax
import pytest

jax.config.update("jax_default_matmul_precision", "highest")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow full-size check: opt in with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# Set by nox's tests session on a Python with no torch CPU build (noxfile.py WITHOUT_TORCH): the
# reason. Only then does a test that needs the reference's packages skip instead of erroring.
WITHOUT_TORCH = os.environ.get("GEMMA3_TESTS_WITHOUT_TORCH")
REFERENCE_MODULES = ("torch", "transformers", "accelerate")
# What a missing reference looks like: an import of it failing, or the harness's own refusal
# (harness/system/environment.py: `python -m harness` and its CLI module exit before any import).
_MISSING = (*(f"No module named '{m}" for m in REFERENCE_MODULES),
            "python -m harness needs packages this environment lacks: torch")


def _needs_reference(text: str) -> bool:
    return any(m in text for m in _MISSING)


def _skipped(path) -> tuple:
    return str(path), 0, f"Skipped: {WITHOUT_TORCH}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A test file that imports torch (or the harness's CLI, which exits without it) is
    skipped, with the reason."""
    outcome = yield
    if not WITHOUT_TORCH:
        return
    if outcome.excinfo is not None and issubclass(outcome.excinfo[0], SystemExit):
        # The harness's CLI refused to import (require_packages): pytest would stop on it.
        outcome.force_result(pytest.CollectReport(collector.nodeid, "skipped",
                                                  _skipped(collector.path), []))
        return
    report = outcome.get_result()
    if report.failed and _needs_reference(str(report.longrepr)):
        report.outcome, report.longrepr = "skipped", _skipped(collector.path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test (or its fixture) that needs torch when it runs is skipped, with the reason."""
    outcome = yield
    report = outcome.get_result()
    if not (WITHOUT_TORCH and report.failed and call.excinfo is not None):
        return
    missing = (call.excinfo.errisinstance(ModuleNotFoundError)
               and (call.excinfo.value.name or "").split(".")[0] in REFERENCE_MODULES)
    if missing or _needs_reference(str(report.longrepr)):
        report.outcome, report.longrepr = "skipped", _skipped(item.path)
