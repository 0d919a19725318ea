"""A local sweep whose middle element diverges: the elements after it still train, the failure is
one error line naming the run, --status shows every element's state, and a relaunch leaves the
finished runs untouched (issue 24, "Sweeps run locally")."""
from __future__ import annotations

import hashlib

from tests.tiny import launch, write_two_stage_recipe

LRS = "stages.pretrain.optimizer.lr=1e-3,1e30,2e-3"  # lr 1e30: NaN at step 2


def _digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.pt"))}


def test_a_diverging_element_does_not_stop_the_others(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=3, ckpt_every=0)
    out = launch(recipe, LRS)
    assert out.returncode == 2, out.stderr
    runs = tmp_path / "runs" / "tiny_two_stage"
    good = [runs / "pretrain.optimizer.lr-0.001", runs / "pretrain.optimizer.lr-0.002"]
    bad = runs / "pretrain.optimizer.lr-1e+30"
    for run in good:  # the element after the failed one ran too
        assert (run / "finetune" / "checkpoints" / "step_00000003.pt").is_file()
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert errors[-1].startswith("error: 1 of 3 runs failed: pretrain.optimizer.lr-1e+30 (stage 'pretrain': the loss "
                                 "or gradient became NaN/inf at step 2); the others ran"), out.stderr
    assert "Traceback" not in out.stderr

    status = launch("--status", recipe)
    assert status.returncode == 1  # some failed
    rows = {tuple(line.split()[:3]) for line in status.stdout.splitlines()}
    assert {(r.name, s, "done") for r in good for s in ("pretrain", "finetune")} <= rows, status.stdout
    assert (bad.name, "pretrain", "diverged") in rows and (bad.name, "finetune", "not") in rows, status.stdout

    before = _digests(runs)
    again = launch(recipe, LRS)  # resumes the unfinished one (it diverges again), skips the finished
    assert again.returncode == 2 and "1 of 3 runs failed" in again.stderr
    assert _digests(runs) == before  # nothing finished was retrained, rewritten or lost
