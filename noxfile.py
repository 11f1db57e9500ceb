"""Sessions: `nox -s matrix` (the main job), `nox -s tests`, `nox -s bench`, `nox -s lint`."""

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

# The parity reference's torch build. 2.13.0 is the CPU wheel this project's machines carry;
# override it (e.g. GEMMA3_TORCH="torch==2.11.0") to use another build.
TORCH = os.environ.get("GEMMA3_TORCH", "torch==2.13.0")


def install(session, extra):
    session.install(TORCH)
    session.install("-e", f".[{extra}]")


@nox.session
def tests(session):
    """Run the unit and parity tests on CPU."""
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
def lint(session):
    """Lint with ruff."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")


@nox.session(python=False)
def check(session):
    """Validate result files and check that the README matrix is current (no install)."""
    session.run("python", "-m", "matrix", "check")
