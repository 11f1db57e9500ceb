"""Sessions: `nox -s matrix` (the main job), `nox -s tests`, `nox -s bench`, `nox -s lint`,
`nox -s wheelhouse` (wheels for an offline machine)."""

import importlib.util
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

HERE = Path(__file__).resolve().parent
WHEELHOUSE = "wheelhouse"


def _load(name):
    """A standard-library-only harness module, read by path: nox's own Python has no jax, and
    importing the harness package would need it."""
    spec = importlib.util.spec_from_file_location(f"_nox_{name}", HERE / "harness" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


accelerator = _load("accelerator")
environment = _load("environment")


def install(session, extra):
    """The JAX build this machine needs (GEMMA3_ACCELERATOR overrides the detection) and the
    torch build that fits it (GEMMA3_TORCH overrides it with pip arguments)."""
    try:
        found = accelerator.detect()
    except accelerator.BadOverride as e:
        session.error(str(e))
    session.log(f"accelerator: {found.line}")
    for args in accelerator.install_args(found.kind, extra, os.environ.get("GEMMA3_TORCH")):
        session.install(*args)


@nox.session
def tests(session):
    """Run the unit and parity tests, on the JAX build this machine needs."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def matrix(session):
    """Run every model that fits this machine through the harness, then re-render the README."""
    install(session, "harness")
    session.run("python", "-m", "harness", *session.posargs)
    session.run("python", "-m", "matrix", "render")


@nox.session
def bench(session):
    """Benchmark JAX against transformers on the same synthetic checkpoint."""
    install(session, "harness")
    session.run("python", "-m", "harness.bench", *session.posargs)


@nox.session
def wheelhouse(session):
    """Download the wheels the harness needs beyond a preinstalled jax/torch stack."""
    requirements = environment.write_requirements(WHEELHOUSE)
    session.run("python", "-m", "pip", *environment.wheelhouse_args(WHEELHOUSE), *session.posargs)
    session.log(f"offline: copy {WHEELHOUSE}/ to the machine, then "
                f"{environment.OFFLINE_INSTALL} ({requirements} lists what it holds)")


@nox.session
def lint(session):
    """Lint with ruff."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")


@nox.session(python=False)
def check(session):
    """Validate result files and check that the README matrix is current (no install)."""
    session.run("python", "-m", "matrix", "check")
