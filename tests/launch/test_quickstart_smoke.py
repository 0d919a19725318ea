"""The README's quickstart command at tiny size: real config.yaml, checkpoints, tensorboard events, PNGs."""
import json

import numpy as np

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mdreg.config import load_config, load_recipe
from mdreg.config.overrides import apply_overrides
from mdreg.config.tree import to_plain
from tests.tiny import QUICKSTART_TINY, REPO, launch


def test_quickstart_runs_end_to_end_and_leaves_its_outputs(tmp_path):
    out = launch(REPO / "recipes" / "quickstart.py", *QUICKSTART_TINY, f"train.output_root={tmp_path}", check=True)
    run = next((tmp_path / "quickstart").iterdir())  # name is made from the overrides
    assert "run directory:" in out.stdout and str(run) in out.stdout

    expected = load_recipe(REPO / "recipes" / "quickstart.py")
    apply_overrides(expected, QUICKSTART_TINY + [f"train.output_root={tmp_path}"])
    assert to_plain(load_config(run / "config.yaml")) == to_plain(expected)

    for stage in ("pretrain", "finetune"):
        folder = run / stage
        assert (folder / "config.yaml").is_file()
        assert (folder / "checkpoints" / "last").read_text().strip() == "step_00000003.pt"
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
        events = EventAccumulator(str(folder))
        events.Reload()
        assert {f"{stage}/loss", f"{stage}/lr", f"{stage}/grad_norm", f"{stage}/images_per_s"} <= \
            set(events.Tags()["scalars"])
        assert events.Scalars(f"{stage}/loss")[-1].step == 3
        assert f"{stage}/samples" in events.Tags()["images"]
        (png,) = (folder / "samples").glob("*.png")
        with Image.open(png) as img:
            assert img.format == "PNG" and img.width > 16
            pixels = np.asarray(img.convert("RGB"))
        # the grid shows the samples that tensorboard logged, and they are not a blank picture
        logged = events.Images(f"{stage}/samples")[-1]
        assert (logged.width, logged.height) == (pixels.shape[1], pixels.shape[0])
        cells = pixels[2:-2, 2:-2].reshape(-1, 3)
        assert len(np.unique(cells, axis=0)) > 8 and cells.std() > 1


def test_dry_run_prints_config_and_plan_and_writes_nothing(tmp_path):
    out = launch(REPO / "recipes" / "quickstart.py", "--dry-run", f"train.output_root={tmp_path}", check=True)
    assert "# resolved config" in out.stdout and "_target_: backbone:uvit" in out.stdout
    assert "pretrain" in out.stdout and "finetune" in out.stdout and " 800 " in out.stdout
    assert list(tmp_path.iterdir()) == []
