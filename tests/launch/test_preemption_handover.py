"""StopAtStepBoundary hands submitit's handler a real signal number on every rank.

In a multi-task job the ranks agree to stop together (the stop vote), so a rank may stop
without having caught the signal itself; submitit's handler starts with
``signal.Signals(signum)`` and must not get None. The full preemption path runs against the
real Slurm in tests/slurm/test_preemption.py and test_gpus.py.
"""
from __future__ import annotations

import signal

import pytest

from mdreg.launch.slurm.preemption import StopAtStepBoundary, preemption_signal


@pytest.mark.parametrize("caught", [True, False])
def test_requeue_passes_the_preemption_signal(caught):
    received = []

    def installed_by_submitit(signum, frame):  # stands where submitit's requeue handler is installed
        received.append(signal.Signals(signum))
        raise SystemExit(0)

    sig = preemption_signal()
    previous = signal.signal(sig, installed_by_submitit)
    try:
        with StopAtStepBoundary() as stop:
            if caught:
                signal.raise_signal(sig)  # rank 0: the signal itself arrives, and only sets a flag
                assert stop.requested and received == []
            with pytest.raises(SystemExit):
                stop.requeue()
        assert signal.getsignal(sig) is installed_by_submitit  # restored on exit
    finally:
        signal.signal(sig, previous)
    assert received == [sig]
