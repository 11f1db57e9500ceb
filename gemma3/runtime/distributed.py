"""Multi-host start-up: joins this process to the others of a job through jax.distributed.

Call `initialize_distributed()` first thing, before any JAX computation, in every process; on
one host it does nothing, so the same command runs everywhere. It starts the distributed
runtime when it finds, in this order:
  1. JAX_COORDINATOR_ADDRESS (host:port of process 0) with JAX_NUM_PROCESSES and
     JAX_PROCESS_ID: any cluster, e.g. two GPU boxes started by hand;
  2. a launcher jax detects by itself: SLURM (srun with more than one task), Open MPI (mpirun
     with more than one rank), a multi-host Cloud TPU on GKE (TPU_WORKER_HOSTNAMES lists more
     than one host);
  3. GEMMA3_DISTRIBUTED=1: let jax auto-detect anything else, e.g. a Cloud TPU pod slice on
     GCE, whose hosts are known only to the metadata server.
"""

from __future__ import annotations

import os

import jax

from gemma3.config.errors import InputError

COORDINATOR, NUM_PROCESSES, PROCESS_ID = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
                                          "JAX_PROCESS_ID")
FORCE = "GEMMA3_DISTRIBUTED"


def initialize_distributed(environ=None) -> bool:
    """Starts jax.distributed when the environment describes a multi-process job (see the
    module docstring). Returns True when this process is part of one, False on one host."""
    env = os.environ if environ is None else environ
    if jax.distributed.is_initialized():
        return True
    if env.get(COORDINATOR):
        count, index = _explicit_process(env)
        jax.distributed.initialize(env[COORDINATOR], num_processes=count, process_id=index)
        return True
    if _launcher_detected(env):
        jax.distributed.initialize()  # jax reads the launcher's own variables
        return True
    return False


def _explicit_process(env) -> tuple[int, int]:
    missing = [name for name in (NUM_PROCESSES, PROCESS_ID) if not env.get(name)]
    if missing:
        raise InputError(f"{COORDINATOR}={env[COORDINATOR]!r} is set but {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not; set {NUM_PROCESSES} to the "
                         f"number of processes and {PROCESS_ID} to this one's index (0 on the "
                         "coordinator), the same coordinator address in every process")
    try:
        count, index = int(env[NUM_PROCESSES]), int(env[PROCESS_ID])
    except ValueError:
        raise InputError(f"{NUM_PROCESSES}={env[NUM_PROCESSES]!r} and {PROCESS_ID}="
                         f"{env[PROCESS_ID]!r} must be integers") from None
    if not 0 <= index < count:
        raise InputError(f"{PROCESS_ID}={index} must lie in [0, {NUM_PROCESSES}={count})")
    return count, index


def _launcher_detected(env) -> bool:
    if env.get(FORCE, "").lower() in ("1", "true", "yes"):
        return True
    # SLURM: inside an srun step (sbatch alone sets no step variables jax could use).
    slurm = "SLURM_STEP_NODELIST" in env and int(env.get("SLURM_NTASKS", "1")) > 1
    mpi = "OMPI_MCA_orte_hnp_uri" in env and int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    tpu_hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]
    return slurm or mpi or len(tpu_hosts) > 1
