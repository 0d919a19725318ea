"""--eval-commands: a recipe's evaluation section as sampling + FID commands, per run."""
from mdreg.commands.launch import main
from tests.tiny import REPO

R = REPO / "recipes"


def test_maskdit_guided_fid_command(capsys):
    assert main([str(R / "maskdit_in256.py"), "--eval-commands", "paths.adm_ref_256=/refs/in256.npz"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# default: MaskDiT Table 1: MaskDiT-G FID-50K 2.28")
    assert out[1] == ("python tools/sample.py runs/maskdit_in256/default --stage unmask_cfg --sampler edm_heun "
                      "steps=40 --num 50000 --out runs/maskdit_in256/default/unmask_cfg/eval/fid50000 --guidance 1.5")
    assert out[2] == ("python tools/fid.py runs/maskdit_in256/default/unmask_cfg/eval/fid50000/samples.npz "
                      "/refs/in256.npz --inception-weights $INCEPTION_WEIGHTS")


def test_every_cell_of_a_grid_and_the_second_stage_by_override(capsys):
    assert main([str(R / "maskdm_transfer_table3.py"), "--eval-commands", "evaluation.stage=tune_1pct"]) == 0
    out = capsys.readouterr().out
    for run in ("celebahq", "vggface2", "scratch"):
        assert f"runs/maskdm_transfer_table3/{run} --stage tune_1pct --sampler ddim steps=250 eta=1.0 eps_after_clip=raw --num 10000" \
                in out  # maskdm samples with the raw epsilon after clipping
    assert "/data/celebahq --inception-weights $INCEPTION_WEIGHTS --reference-resolution 256" in out  # all of it
    assert "--guidance" not in out
    assert main([str(R / "toy_rose.py"), "--eval-commands"]) == 0
    assert "tools/toy_report.py" in capsys.readouterr().out


def test_image_folder_reference_gets_the_training_resolution(capsys):
    assert main([str(R / "maskdm_celeba64_table1.py"), "--eval-commands"]) == 0
    fid = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python tools/fid.py")]
    assert fid and all(line.endswith("/data/celeba --inception-weights $INCEPTION_WEIGHTS --reference-resolution 64")
                       for line in fid)
    # a stage with its own dataset: that dataset's resolution, not data.dataset's
    assert main([str(R / "maskdm_transfer_table3.py"), "--eval-commands", "evaluation.stage=tune_1pct",
                 "stages.tune_1pct.dataset.resolution=128", "data.dataset.resolution=32"]) == 0
    fid = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python tools/fid.py")]
    assert len(fid) == 3 and all(line.endswith("--reference-resolution 128") for line in fid)
