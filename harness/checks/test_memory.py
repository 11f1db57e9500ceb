"""memory: the planner's prediction (made before the run) against the measured peak of this
dtype's checks: device peak_bytes_in_use on GPU/TPU, peak RSS on CPU. Runs last per dtype."""

from contract.bounds import memory_slack
from harness.memory.measure import measured_peak


def test_memory(model, case, run, record):
    predicted = int(run["predicted"][case.dtype])
    measured, what = measured_peak(run["backend"])
    slack = memory_slack(run["backend"])
    problems = record({"predicted_peak_bytes": predicted, "measured_peak_bytes": measured,
                       "ratio": measured / predicted if measured else None})
    assert measured is not None, f"{run['backend']} reports no peak memory ({what})"
    assert not problems, (
        f"{case.id}: measured {what} {measured / 2**30:.2f} GiB exceeds the planner's "
        f"prediction {predicted / 2**30:.2f} GiB by more than {slack:.0%}: update "
        "harness/memory/planner.py so that refusals stay honest")
