"""Which accelerator this machine has, from what the OS shows (not from JAX), and why.

Standard library only: the noxfile loads this file by path to choose the JAX build to install,
before any environment has jax. The harness uses it to refuse a CPU-only jaxlib on an
accelerator machine (harness/fingerprint.py).

    python -m harness.system.accelerator      prints e.g. "cuda13: nvidia-smi lists 8 GPUs (NVIDIA
                                       H100 80GB HBM3), driver 580.65.06, CUDA 13.0"

Evidence, first found wins: GEMMA3_ACCELERATOR=cpu|cuda12|cuda13|tpu (an override); an
NVIDIA GPU (`nvidia-smi`, else /proc/driver/nvidia); a TPU (/dev/accel*, or /dev/vfio/* with
the TPU_* variables a TPU VM sets); else cpu. GEMMA3_DETECT_ROOT puts /proc and /dev under
another root, so tests can fake them (and a fake `nvidia-smi` on PATH fakes the GPU).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

OVERRIDE_ENV = "GEMMA3_ACCELERATOR"
ROOT_ENV = "GEMMA3_DETECT_ROOT"
KINDS = ("cpu", "cuda12", "cuda13", "tpu")
BACKEND = {"cpu": "cpu", "cuda12": "gpu", "cuda13": "gpu", "tpu": "tpu"}
# Set on Cloud TPU VMs; /dev/vfio alone is no evidence (it serves any PCI passthrough).
TPU_ENV = ("TPU_ACCELERATOR_TYPE", "TPU_NAME", "TPU_WORKER_ID", "TPU_WORKER_HOSTNAMES",
           "TPU_SKIP_MDS_QUERY", "TPU_PROCESS_BOUNDS", "TPU_CHIPS_PER_PROCESS_BOUNDS")
# The lowest Linux driver of each CUDA major version (NVIDIA's CUDA toolkit release notes):
# JAX's cuda13 wheels need a CUDA 13 driver, its cuda12 wheels a CUDA 12 one.
DRIVER_FOR_CUDA = ((13, 580), (12, 525))
# The reference's torch build, one pin for every kind: PyPI's Linux wheel of a torch version
# is its default CUDA build, which an NVIDIA machine gets; this project's CPU machines carry
# the CPU build of the same version as a local wheel. Where PyPI would serve a CPU or TPU
# machine the CUDA build (it runs there, but is large), GEMMA3_TORCH replaces these pip
# arguments: "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu".
TORCH = "torch==2.13.0"
_SMI_TIMEOUT = 20.0


class BadOverride(ValueError):
    """GEMMA3_ACCELERATOR names no kind this project installs."""


@dataclasses.dataclass(frozen=True)
class Accelerator:
    kind: str  # one of KINDS
    reason: str  # one human line: the evidence
    driver: str | None = None  # NVIDIA driver version, where seen
    cuda: str | None = None  # the newest CUDA version that driver supports, e.g. "13.0"

    @property
    def backend(self) -> str:
        """The JAX backend this machine should run on: cpu, gpu or tpu."""
        return BACKEND[self.kind]

    @property
    def line(self) -> str:
        return f"{self.kind}: {self.reason}"


def project_extras(kind: str, extra: str) -> str:
    """`.[harness,cuda13]`: the project with `extra` and the JAX extra for `kind` (the CPU
    build is the default `jax`)."""
    if kind not in KINDS:
        raise ValueError(f"accelerator kind {kind!r}: expected one of {', '.join(KINDS)}")
    return f".[{extra}]" if kind == "cpu" else f".[{extra},{kind}]"


def install_command(kind: str, extra: str = "harness") -> str:
    """The pip command that installs the JAX build for `kind` with the harness."""
    return f'pip install -e "{project_extras(kind, extra)}"'


def install_args(kind: str, extra: str, torch: str | None = None) -> list[list[str]]:
    """The pip install argument lists nox runs, in order: torch, then the project with the
    JAX extra for `kind`. `torch` (GEMMA3_TORCH) replaces the torch arguments."""
    project = project_extras(kind, extra)
    return [shlex.split(torch) if torch and torch.strip() else [TORCH], ["-e", project]]


def detect(env: dict | None = None) -> Accelerator:
    """What this machine has; raises BadOverride on a bad GEMMA3_ACCELERATOR."""
    env = dict(os.environ if env is None else env)
    override = env.get(OVERRIDE_ENV, "").strip()
    if override:
        if override not in KINDS:
            raise BadOverride(f"{OVERRIDE_ENV}={override!r}: expected one of "
                             f"{', '.join(KINDS)} (or unset it to detect the machine)")
        return Accelerator(override, f"{OVERRIDE_ENV}={override} (detection skipped)")
    root = Path(env.get(ROOT_ENV) or "/")
    notes: list[str] = []
    found = _nvidia(env, root, notes) or _tpu(env, root, notes)
    if found:
        return found
    return Accelerator("cpu", "no NVIDIA GPU or TPU found"
                       + (f" ({'; '.join(notes)})" if notes else ""))


def nvidia_smi(env: dict | None = None) -> tuple[list[str], str | None, str | None, str | None]:
    """(GPU names, driver version, CUDA version, error) from `nvidia-smi`; ([], .., error)
    when it is missing or fails."""
    env = dict(os.environ if env is None else env)
    exe = shutil.which("nvidia-smi", path=env.get("PATH", os.defpath))
    if exe is None:
        return [], None, None, None
    listing, error = _run([exe, "-L"], env)
    if error:
        return [], None, None, error
    names = [m.group(1).strip() for m in re.finditer(r"^GPU \d+: (.+?)(?: \(UUID:.*)?$",
                                                      listing, re.MULTILINE)]
    header, error = _run([exe], env)
    driver = _search(r"Driver Version:\s*([0-9.]+)", header)
    cuda = _search(r"CUDA Version:\s*([0-9.]+)", header)
    return names, driver, cuda, error


def _run(args: list[str], env: dict) -> tuple[str, str | None]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env,
                              timeout=_SMI_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "", f"{Path(args[0]).name} failed: {e}"
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()
        return "", (f"`{' '.join([Path(args[0]).name, *args[1:]])}` exited {done.returncode}"
                    f"{': ' + first[0][:120] if first else ''}")
    return done.stdout, None


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def _nvidia(env: dict, root: Path, notes: list[str]) -> Accelerator | None:
    names, driver, cuda, error = nvidia_smi(env)
    source = "nvidia-smi lists"
    if error:
        notes.append(error)
    if not names:  # no nvidia-smi (a container without the tools): the kernel driver's view
        names, driver = _proc_gpus(root)
        source, cuda = "/proc/driver/nvidia lists", None
    if not names:
        return None
    cuda = cuda or _cuda_of_driver(driver)
    major = int(cuda.split(".")[0]) if cuda else None
    kind = "cuda13" if major is not None and major >= 13 else "cuda12"
    models = ", ".join(sorted(set(names)))
    count = f"{len(names)} GPU{'s' if len(names) != 1 else ''}"
    where = f"driver {driver}" if driver else "driver version unknown"
    reason = f"{source} {count} ({models}), {where}, CUDA {cuda or 'unknown'}"
    if major is None:
        reason += "; assuming CUDA 12 (set GEMMA3_ACCELERATOR=cuda13 for a CUDA 13 driver)"
    elif major < 12:
        reason += "; JAX's CUDA wheels need a CUDA 12 or newer driver: update the NVIDIA driver"
    return Accelerator(kind, reason, driver=driver, cuda=cuda)


def _proc_gpus(root: Path) -> tuple[list[str], str | None]:
    gpus = sorted((root / "proc/driver/nvidia/gpus").glob("*"))
    names = []
    for gpu in gpus:
        try:
            info = (gpu / "information").read_text(errors="replace")
        except OSError:
            info = ""
        model = re.search(r"^Model:\s*(.+?)\s*$", info, re.MULTILINE)
        names.append(model.group(1) if model else "NVIDIA GPU")
    try:
        version = (root / "proc/driver/nvidia/version").read_text(errors="replace")
    except OSError:
        version = ""
    return names, _search(r"Kernel Module\s+([0-9]+(?:\.[0-9]+)+)", version)


def _cuda_of_driver(driver: str | None) -> str | None:
    """The CUDA major version a Linux driver supports ("13.0" for 580+), or None."""
    try:
        major = int((driver or "").split(".")[0])
    except ValueError:
        return None
    for cuda, lowest in DRIVER_FOR_CUDA:
        if major >= lowest:
            return f"{cuda}.0"
    return "11.x"


def _tpu(env: dict, root: Path, notes: list[str]) -> Accelerator | None:
    accel = sorted(p.name for p in (root / "dev").glob("accel[0-9]*"))
    vfio = sorted(p.name for p in (root / "dev/vfio").glob("[0-9]*"))
    tpu_vars = [name for name in TPU_ENV if env.get(name)]
    kind = env.get("TPU_ACCELERATOR_TYPE") or "TPU"
    if accel:
        chips = f"{len(accel)} TPU chip{'s' if len(accel) != 1 else ''}"
        return Accelerator("tpu", f"/dev lists {chips} ({', '.join(accel)}), type {kind}")
    if vfio and tpu_vars:
        return Accelerator("tpu", f"/dev/vfio lists {len(vfio)} device group(s) and "
                                  f"{', '.join(tpu_vars)} is set, type {kind}")
    if tpu_vars:
        notes.append(f"{', '.join(tpu_vars)} set, but no /dev/accel* or /dev/vfio/* device")
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        print(detect().line)
    except BadOverride as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
