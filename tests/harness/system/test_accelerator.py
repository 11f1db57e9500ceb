"""Accelerators: detection on faked evidence (a fake `nvidia-smi` on PATH, a fake /proc and /dev
under GEMMA3_DETECT_ROOT), the guard against a CPU-only jaxlib on an accelerator machine and its
`--backend cpu` escape, what nox installs, the planner on a faked device memory limit, the
allocator setting of the model processes, and the up-front check for missing packages."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import tomllib
import types

import jax
import jsonschema
import pytest

from harness.checkpoints import registry
from harness.memory import planner
from harness.run import runner
from harness.system import accelerator, environment, fingerprint, threads

GiB = 2**30
H100, H200 = "NVIDIA H100 80GB HBM3", "NVIDIA H200"
SCHEMA = json.loads((registry.REPO_ROOT / "contract/schema/result-v1.schema.json").read_text())


def fake_smi(bin_dir, gpus: int, name: str, driver: str, cuda: str, fail: str | None = None):
    """An `nvidia-smi` that answers `-L` and the plain header like the real one."""
    bin_dir.mkdir(exist_ok=True)
    listing = " ".join(f"'GPU {i}: {name} (UUID: GPU-{i:08d})'" for i in range(gpus))
    header = f"'| NVIDIA-SMI {driver}    Driver Version: {driver}    CUDA Version: {cuda}  |'"
    # printf and echo are shell builtins: the script works with PATH holding only its folder.
    body = (f'echo "{fail}" >&2; exit 9' if fail else
            f"if [ \"$1\" = -L ]; then printf '%s\\n' {listing}; "
            f"else printf '%s\\n' '+-----+' {header} '+-----+'; fi")
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(0o755)
    return smi


@pytest.fixture
def machine(tmp_path):
    """An environment with no evidence at all: an empty root and a PATH with no nvidia-smi."""
    (tmp_path / "root").mkdir()
    (tmp_path / "bin").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TPU_") and k != accelerator.OVERRIDE_ENV}
    env.update(PATH=str(tmp_path / "bin"), **{accelerator.ROOT_ENV: str(tmp_path / "root")})
    return env


def with_gpu(env, tmp_path, **kw) -> dict:
    smi = fake_smi(tmp_path / "gpu-bin", **{"gpus": 1, "name": H200, "driver": "580.95.05",
                                        "cuda": "13.0", **kw})
    # JAX_PLATFORMS=cpu: JAX on the CPU, as a CPU-only jaxlib is, on any machine running this.
    return {**env, "PATH": f"{smi.parent}{os.pathsep}{os.environ['PATH']}", "JAX_PLATFORMS": "cpu"}


def use(monkeypatch, env: dict) -> None:
    """Makes os.environ exactly env for the test."""
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def fake_proc(root, gpus: int, model: str, driver: str) -> None:
    for i in range(gpus):
        gpu = root / f"proc/driver/nvidia/gpus/0000:{i + 1:02x}:00.0"
        gpu.mkdir(parents=True)
        (gpu / "information").write_text(f"Model: \t\t {model}\nIRQ:   \t\t 42\n")
    (root / "proc/driver/nvidia/version").write_text(
        f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Release Build\n")


# --- detection -------------------------------------------------------------------------------

@pytest.mark.parametrize("driver, cuda, kind", [("580.65.06", "13.0", "cuda13"),
                                                ("550.54.15", "12.4", "cuda12")])
def test_nvidia_smi_chooses_the_build_by_the_driver_cuda_version(machine, tmp_path, driver,
                                                                 cuda, kind):
    fake_smi(tmp_path / "bin", gpus=8, name=H100, driver=driver, cuda=cuda)
    found = accelerator.detect(machine)
    assert (found.kind, found.backend, found.driver, found.cuda) == (kind, "gpu", driver, cuda)
    assert found.line == f"{kind}: nvidia-smi lists 8 GPUs ({H100}), driver {driver}, CUDA {cuda}"


@pytest.mark.parametrize("driver, kind, cuda", [("580.65.06", "cuda13", "13.0"),
                                                ("535.104.05", "cuda12", "12.0")])
def test_without_nvidia_smi_the_kernel_driver_in_proc_is_read(machine, tmp_path, driver, kind,
                                                              cuda):
    fake_proc(tmp_path / "root", 2, H100, driver)
    found = accelerator.detect(machine)
    assert found.kind == kind
    assert found.reason == f"/proc/driver/nvidia lists 2 GPUs ({H100}), driver {driver}, CUDA {cuda}"


def test_a_driver_older_than_cuda_12_is_named(machine, tmp_path):
    fake_smi(tmp_path / "bin", gpus=1, name="Tesla V100", driver="470.82.01", cuda="11.4")
    found = accelerator.detect(machine)
    assert found.kind == "cuda12" and "update the NVIDIA driver" in found.reason


def test_a_failing_nvidia_smi_is_no_gpu_and_says_why(machine, tmp_path):
    fake_smi(tmp_path / "bin", gpus=1, name=H100, driver="x", cuda="x",
             fail="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
    found = accelerator.detect(machine)
    assert found.kind == "cpu"
    assert "`nvidia-smi -L` exited 9: NVIDIA-SMI has failed" in found.reason


def test_tpu_chips_in_dev(machine, tmp_path):
    for i in range(4):
        (tmp_path / f"root/dev/accel{i}").mkdir(parents=True)
    found = accelerator.detect({**machine, "TPU_ACCELERATOR_TYPE": "v5litepod-4"})
    assert found.kind == "tpu" and found.backend == "tpu"
    assert found.reason == "/dev lists 4 TPU chips (accel0, accel1, accel2, accel3), type v5litepod-4"


def test_vfio_counts_as_a_tpu_only_with_the_tpu_vm_variables(machine, tmp_path):
    (tmp_path / "root/dev/vfio/0").mkdir(parents=True)
    (tmp_path / "root/dev/vfio/vfio").mkdir()
    assert accelerator.detect(machine).kind == "cpu"  # any PCI passthrough has /dev/vfio
    found = accelerator.detect({**machine, "TPU_ACCELERATOR_TYPE": "v6e-8", "TPU_WORKER_ID": "0"})
    assert found.kind == "tpu"
    assert found.reason == ("/dev/vfio lists 1 device group(s) and TPU_ACCELERATOR_TYPE, "
                            "TPU_WORKER_ID is set, type v6e-8")


def test_no_evidence_is_cpu(machine):
    found = accelerator.detect(machine)
    assert found.line == "cpu: no NVIDIA GPU or TPU found" and found.backend == "cpu"
    found = accelerator.detect({**machine, "TPU_NAME": "my-tpu"})
    assert found.line == ("cpu: no NVIDIA GPU or TPU found (TPU_NAME set, but no /dev/accel* "
                          "or /dev/vfio/* device)")


@pytest.mark.parametrize("kind", accelerator.KINDS)
def test_the_override_wins_over_the_evidence(machine, tmp_path, kind):
    env = with_gpu(machine, tmp_path)
    found = accelerator.detect({**env, accelerator.OVERRIDE_ENV: kind})
    assert found.line == f"{kind}: GEMMA3_ACCELERATOR={kind} (detection skipped)"


def test_a_bad_override_is_a_clear_error(machine):
    env = {**machine, accelerator.OVERRIDE_ENV: "rocm"}
    with pytest.raises(accelerator.BadOverride) as e:
        accelerator.detect(env)
    assert str(e.value) == ("GEMMA3_ACCELERATOR='rocm': expected one of cpu, cuda12, cuda13, "
                            "tpu (or unset it to detect the machine)")
    done = subprocess.run([sys.executable, "-m", "harness.system.accelerator"], env=env,
                          cwd=registry.REPO_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "GEMMA3_ACCELERATOR='rocm'" in done.stderr


# --- what nox installs -----------------------------------------------------------------------

@pytest.mark.parametrize("kind, project", [("cpu", ".[harness]"), ("cuda12", ".[harness,cuda12]"),
                                           ("cuda13", ".[harness,cuda13]"),
                                           ("tpu", ".[harness,tpu]")])
def test_install_arguments_per_kind(kind, project):
    assert accelerator.install_args(kind, "harness") == [["torch==2.13.0"], ["-e", project]]
    assert accelerator.install_command(kind) == f'pip install -e "{project}"'


def test_gemma3_torch_replaces_the_torch_arguments():
    args = accelerator.install_args(
        "tpu", "test", "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    assert args == [["torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"],
                    ["-e", ".[test,tpu]"]]
    with pytest.raises(ValueError, match="'cuda11': expected one of cpu, cuda12"):
        accelerator.install_args("cuda11", "harness")


def test_every_jax_extra_is_in_pyproject():
    extras = tomllib.loads((registry.REPO_ROOT / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    for kind in ("cuda12", "cuda13", "tpu"):
        assert extras[kind] == [f"jax[{kind}]"]


class FakeSession:
    def __init__(self):
        self.logged, self.installed = [], []

    def log(self, text):
        self.logged.append(text)

    def install(self, *args):
        self.installed.append(list(args))

    def error(self, text):
        raise RuntimeError(text)


@pytest.fixture
def noxfile(monkeypatch):
    """The noxfile, loaded with a stand-in for nox (not installed in the test environment)."""
    fake_nox = types.ModuleType("nox")
    fake_nox.options = types.SimpleNamespace()
    fake_nox.session = lambda *a, **k: a[0] if a and callable(a[0]) else (lambda f: f)
    monkeypatch.setitem(sys.modules, "nox", fake_nox)
    spec = importlib.util.spec_from_file_location("_noxfile", registry.REPO_ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nox_prints_the_detection_and_installs_the_matching_extra(noxfile, machine, tmp_path,
                                                                  monkeypatch):
    env = with_gpu(machine, tmp_path)
    env.pop("GEMMA3_TORCH", None)
    use(monkeypatch, env)
    session = FakeSession()
    noxfile.install(session, "harness")
    assert session.logged == [(f"accelerator: cuda13: nvidia-smi lists 1 GPU ({H200}), "
                               f"driver 580.95.05, CUDA 13.0")]
    assert session.installed == [["torch==2.13.0"], ["-e", ".[harness,cuda13]"]]
    monkeypatch.setenv(accelerator.OVERRIDE_ENV, "gpu")
    with pytest.raises(RuntimeError, match="GEMMA3_ACCELERATOR='gpu'"):
        noxfile.install(FakeSession(), "harness")


def test_nox_loads_the_detector_without_the_harness_package(noxfile):
    assert noxfile.accelerator.__name__ == "_nox_accelerator"
    assert noxfile.environment.__name__ == "_nox_environment"


# --- the guard -------------------------------------------------------------------------------

def test_the_guard_names_the_device_and_the_install_command(machine, tmp_path):
    seen = accelerator.detect(with_gpu(machine, tmp_path))
    with pytest.raises(fingerprint.BackendMismatch) as e:
        fingerprint.check_accelerator(None, "cpu", seen)
    assert str(e.value) == (
        f"this machine has an accelerator (cuda13: nvidia-smi lists 1 GPU ({H200}), driver "
        f"580.95.05, CUDA 13.0), but JAX's default backend is 'cpu' (a CPU-only jaxlib), so "
        f"this run would fill the CPU column. Install the JAX build for it: "
        f'pip install -e ".[harness,cuda13]" (nox -s matrix does this), or pass --backend cpu '
        f"to run the CPU column on purpose.")
    fingerprint.check_accelerator("cpu", "cpu", seen)  # the CPU column on purpose
    fingerprint.check_accelerator(None, "gpu", seen)  # the right jaxlib
    fingerprint.check_accelerator(None, "cpu", accelerator.detect(machine))  # a CPU machine


def test_harness_stops_before_any_model_on_a_cpu_jaxlib_with_a_gpu(machine, tmp_path):
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "harness", "--models", "gemma-3-270m",
                           "--results", str(results)], env=with_gpu(machine, tmp_path),
                          cwd=registry.REPO_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"nvidia-smi lists 1 GPU ({H200})" in done.stderr
    assert 'pip install -e ".[harness,cuda13]"' in done.stderr
    assert "gemma-3-270m" not in done.stderr and not results.exists()


def test_backend_cpu_runs_the_cpu_column_on_purpose(machine, tmp_path, monkeypatch):
    use(monkeypatch, with_gpu(machine, tmp_path))  # without --backend: the test above
    fp = runner.take_fingerprint("cpu")
    assert fp["backend"] == "cpu" and fp["versions"]["nvidia_driver"] == "580.95.05"


def test_a_plain_cpu_machine_runs_as_today(machine, monkeypatch):
    use(monkeypatch, machine)
    fp = fingerprint.fingerprint(None)  # no evidence: the guard stays quiet
    assert fp["backend"] == jax.default_backend() and "nvidia_driver" not in fp["versions"]


def test_gpu_versions_fit_the_result_schema(machine, tmp_path, monkeypatch):
    use(monkeypatch, with_gpu(machine, tmp_path))
    versions = fingerprint.versions()
    assert (versions["nvidia_driver"], versions["cuda_driver"]) == ("580.95.05", "13.0")
    jsonschema.validate(versions, {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/versions"})


# --- device memory ---------------------------------------------------------------------------

class FakeDevice:
    def __init__(self, kind, limit, in_use):
        self.device_kind, self._stats = kind, {"bytes_limit": limit, "bytes_in_use": in_use}

    def memory_stats(self):
        return self._stats


def fake_jax(monkeypatch, backend, devices):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(jax, "devices", lambda: devices)


def test_the_planner_reads_the_device_limit_minus_what_is_in_use(monkeypatch):
    # An 80 GiB H100 under JAX's default memory fraction 0.75: a 60 GiB limit, 0.5 GiB in use.
    fake_jax(monkeypatch, "gpu", [FakeDevice(H100, 60 * GiB, GiB // 2)])
    found = fingerprint.devices()
    assert found == {"backend": "gpu", "device_kind": H100, "device_count": 1,
                     "memory_per_device_bytes": 60 * GiB, "available_bytes": int(59.5 * GiB)}
    fp = {**found, "reference": {"gpu_free_bytes": [79 * GiB], "host_bytes": 200 * GiB}}
    assert planner.plan_model(registry.get("gemma-3-4b-it").config(),
                              ["float32", "bfloat16"], fp).run_dtypes == ["float32", "bfloat16"]
    plan = planner.plan_model(registry.get("gemma-3-27b-it").config(),
                              ["float32", "bfloat16"], fp)
    need = plan.verdicts[0].jax.total
    assert plan.run_dtypes == ["bfloat16"] and need > 59.5 * GiB
    assert plan.reason() == f"float32 not supported: needs {need / GiB:.1f} GiB > has 59.5 GiB"


def test_the_fullest_device_decides_what_is_available(monkeypatch):
    # Eight H100s, one of them with 20 GiB taken by another job: that one limits every shard.
    devices = [FakeDevice(H100, 60 * GiB, 0)] * 7 + [FakeDevice(H100, 60 * GiB, 20 * GiB)]
    fake_jax(monkeypatch, "gpu", devices)
    assert fingerprint.devices()["available_bytes"] == 40 * GiB


def test_on_a_tpu_the_reference_counts_host_ram(monkeypatch):
    pytest.importorskip("torch", reason="where the reference runs is torch's answer")
    fake_jax(monkeypatch, "tpu", [FakeDevice("TPU v5 lite", 16 * GiB, 0)])
    reference = fingerprint.reference_memory()  # torch has no GPU on a TPU VM: the host
    fp = {**fingerprint.devices(), "reference": reference}
    assert reference["gpu_free_bytes"] == [] and fp["available_bytes"] == 16 * GiB
    verdict = planner.plan(registry.get("gemma-3-1b-it").config(), "bfloat16", fp)
    assert verdict.jax_available == 16 * GiB
    assert verdict.reference.placement.kind == "host"
    assert verdict.reference.placement.available == reference["host_bytes"] > 0


def test_model_processes_and_the_fingerprint_grow_gpu_memory_on_demand(monkeypatch):
    assert threads.child_env(2, {})["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert threads.child_env(2, {"XLA_PYTHON_CLIENT_PREALLOCATE": "true"})[
        "XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"  # the user's choice wins
    seen = {}

    def run(args, **kw):
        seen.update(kw["env"])
        return subprocess.CompletedProcess(args, 0, stdout="{}", stderr="")

    monkeypatch.setattr(runner.subprocess, "run", run)
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    runner.take_fingerprint(None)
    assert seen["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


# --- offline machines ------------------------------------------------------------------------

def test_every_missing_package_is_named_in_one_message():
    absent = {"psutil", "pytest_jsonreport", "jinja2"}
    error, warning = environment.problems(lambda m: None if m in absent else object())
    assert warning is None
    assert error.startswith("python -m harness needs packages this environment lacks: "
                            "pytest-json-report, psutil, jinja2. ")
    assert environment.OFFLINE_INSTALL in error and "nox -s wheelhouse" in error
    error, warning = environment.problems(lambda m: None if m == "jsonschema" else object())
    assert error is None and "python -m matrix validate|render" in warning
    assert environment.problems(lambda m: object()) == (None, None)


def test_harness_reports_missing_packages_before_importing_them(tmp_path):
    # psutil and pytest-json-report hidden, as on a machine with only the jax/torch stack.
    hide = textwrap.dedent("""
        import importlib.abc, runpy, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("psutil", "pytest_jsonreport"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Hide())
        sys.argv = ["harness", "--results", sys.argv[1]]
        runpy.run_module("harness", run_name="__main__")
        """)
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-c", hide, str(results)], cwd=registry.REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.count("error:") == 1
    assert "lacks: pytest-json-report, psutil." in done.stderr and not results.exists()


def test_the_wheelhouse_holds_what_pyproject_asks_beyond_the_stack(tmp_path):
    extras = tomllib.loads((registry.REPO_ROOT / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    declared = set(extras["harness"]) | set(extras["matrix"])
    assert {p.requirement for p in environment.WHEELHOUSE} <= declared
    args = environment.wheelhouse_args(tmp_path)
    assert args[:3] == ["download", "--dest", str(tmp_path)]
    assert "torch" not in " ".join(args) and "jax" not in " ".join(args)
    lines = environment.write_requirements(tmp_path).read_text().splitlines()
    assert lines == ["pytest>=8", "pytest-json-report>=1.5", "psutil>=5.9", "jinja2>=3.1",
                     "jsonschema>=4.20"]
