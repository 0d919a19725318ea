"""The recipes say what the papers' tables say (MaskDM Tables 1, 5, 6; MaskDiT secs. 4.1-4.4, Table 2)."""
import pytest
from omegaconf import OmegaConf

from mdreg.config.lazy import target_ref
from mdreg.runs.plan import build_plans
from tests.recipes.tiny_overrides import REPO


def runs(name, *overrides):
    return {p.sweep_values.get("_name_", "default"): p for p in build_plans(REPO / "recipes" / name, list(overrides))}


def opt(stage):
    return stage.optimizer.lr, list(stage.optimizer.betas), stage.optimizer.weight_decay


def raw(node, key):
    """A value as written (interpolations unresolved)."""
    return OmegaConf.to_container(node, resolve=False)[key]


def masking(stage):
    return target_ref(stage.masker), stage.masker.get("ratio"), stage.masker.get("block_size")


TABLE1 = {  # name: (mask kind, ratio, block, pre steps, pre batch, pre lr)  -- Table 1 cells, Table 5 lr/batch
    "m10_crop": ("masker:crop", 0.1, None, 50_000, 128, 1e-4), "m10_patch": ("masker:patch", 0.1, None, 50_000, 128, 1e-4),
    "m10_block2": ("masker:block", 0.1, 2, 50_000, 128, 1e-4), "m10_block4": ("masker:block", 0.1, 4, 50_000, 128, 1e-4),
    "m50_crop": ("masker:crop", 0.5, None, 50_000, 256, 2e-4), "m50_patch": ("masker:patch", 0.5, None, 50_000, 256, 2e-4),
    "m50_block2": ("masker:block", 0.5, 2, 50_000, 256, 2e-4), "m50_block4": ("masker:block", 0.5, 4, 50_000, 256, 2e-4),
    "m50_block8": ("masker:block", 0.5, 8, 50_000, 256, 2e-4),
    "m90_crop": ("masker:crop", 0.9, None, 50_000, 512, 2e-4), "m90_patch": ("masker:patch", 0.9, None, 50_000, 512, 2e-4),
    "m90_block2": ("masker:block", 0.9, 2, 50_000, 512, 2e-4), "m90_block4": ("masker:block", 0.9, 4, 50_000, 512, 2e-4),
    "m50_block2_pre100k": ("masker:block", 0.5, 2, 100_000, 256, 2e-4),
    "m50_block2_pre150k": ("masker:block", 0.5, 2, 150_000, 256, 2e-4),
    "m10_patch_2xbs": ("masker:patch", 0.1, None, 50_000, 256, 2e-4),
    "m10_block2_2xbs": ("masker:block", 0.1, 2, 50_000, 256, 2e-4),
}


def test_table1_grid_is_the_reported_cells_with_table5_settings():
    grid = runs("maskdm_celeba64_table1.py")
    assert set(grid) == {"scratch", *TABLE1}
    for name, (kind, ratio, block, steps, batch, lr) in TABLE1.items():
        pre, tune = grid[name].cfg.stages.pretrain, grid[name].cfg.stages.finetune
        assert masking(pre) == (kind, ratio, block), name
        assert (pre.steps, pre.batch_size, opt(pre)) == (steps, batch, (lr, [0.99, 0.99], 0.03)), name
        assert (tune.steps, tune.batch_size, opt(tune)) == (200_000, 128, (1e-4, [0.99, 0.99], 0.03)), name
        assert OmegaConf.to_container(tune.init_from) == {"stage": "pretrain", "weights": "model"}
        for stage in (pre, tune):
            assert target_ref(stage.objective.schedule) == "noise_schedule:ddpm_linear"
            assert OmegaConf.to_container(stage.ema) == {"decay": 0.999, "every": 1, "start": 0}
            assert stage.grad_clip is None and stage.hflip == 0.0
        assert target_ref(pre.objective) == "objective:mdsm" and target_ref(tune.objective) == "objective:dsm"
    scratch = grid["scratch"].cfg.stages
    assert list(scratch) == ["finetune"] and scratch.finetune.steps == 250_000 and scratch.finetune.init_from is None
    ev = grid["m50_block2"].cfg.evaluation
    assert (ev.sampler.steps, ev.sampler.eta, ev.num_samples, ev.stage) == (500, 1.0, 1000, "finetune")  # Table 6
    assert "6.51" in ev.paper and "7.55" in grid["scratch"].cfg.evaluation.paper


@pytest.mark.parametrize("name,pre,tune,backbone,fid", [
    ("maskdm_celebahq256_b.py", (150_000, 64, 1e-4), (550_000, 32, 1e-4), "backbone:maskdm_b_dwt", "10.77"),
    ("maskdm_celebahq256_l.py", (200_000, 128, 1e-4), (550_000, 16, 5e-5), "backbone:maskdm_l_dwt", "9.67"),
])
def test_celebahq_dwt_rows_of_table5(name, pre, tune, backbone, fid):
    cfg = runs(name)["default"].cfg
    assert target_ref(cfg.model) == backbone and (cfg.model.img_size, cfg.model.in_chans) == (128, 12)
    assert target_ref(cfg.data.transform) == "transform:haar_dwt" and cfg.data.dataset.resolution == 256
    p, t = cfg.stages.pretrain, cfg.stages.finetune
    assert (p.steps, p.batch_size, p.optimizer.lr) == pre and (t.steps, t.batch_size, t.optimizer.lr) == tune
    assert masking(p) == ("masker:block", 0.7, 4)
    for stage in (p, t):
        assert (stage.ema.decay, stage.ema.every, stage.grad_clip, stage.hflip) == (0.999, 10, 1.0, 0.5)
        assert target_ref(stage.objective.schedule) == "noise_schedule:ddpm_cosine"
    ev = cfg.evaluation
    assert (ev.sampler.steps, ev.sampler.eta, ev.num_samples) == (500, 0.8, 30_000) and fid in ev.paper


def test_ddpm_baseline_is_maskdm_l_tuning_for_900k_steps_from_scratch():
    base = runs("ddpm_celebahq256_baseline.py")["default"].cfg
    tune = runs("maskdm_celebahq256_l.py")["default"].cfg.stages.finetune
    assert list(base.stages) == ["train"] and base.stages.train.steps == 900_000 and base.stages.train.init_from is None
    for key in ("batch_size", "optimizer", "ema", "grad_clip", "hflip", "objective", "masker", "precision"):
        assert base.stages.train[key] == tune[key], key
    assert target_ref(base.data.transform) == "transform:haar_dwt" and base.evaluation.stage == "train"


def test_table3_transfer_runs():
    grid = runs("maskdm_transfer_table3.py")
    assert set(grid) == {"celebahq", "vggface2", "scratch"}
    stages = grid["celebahq"].cfg.stages
    assert masking(stages.pretrain) == ("masker:block", 0.9, 4)
    assert (stages.pretrain.steps, stages.pretrain.batch_size, stages.pretrain.optimizer.lr) == (200_000, 256, 2e-4)
    assert stages.pretrain.dataset is None and raw(grid["vggface2"].cfg.stages.pretrain.dataset, "root") == "${paths.vggface2}"
    for tune, fraction in (("tune_10pct", 0.1), ("tune_1pct", 0.01)):
        t = stages[tune]
        assert (t.steps, t.batch_size, t.optimizer.lr, t.hflip, t.grad_clip) == (50_000, 64, 5e-5, 0.5, 1.0)
        assert t.dataset.fraction == fraction and t.init_from.stage == "pretrain"
        s = grid["scratch"].cfg.stages[tune]
        assert (s.steps, s.init_from) == (200_000, None)
    assert "pretrain" not in grid["scratch"].cfg.stages
    ev = grid["celebahq"].cfg.evaluation
    assert (ev.sampler.steps, ev.sampler.eta, ev.num_samples) == (250, 1.0, 10_000)
    assert raw(ev, "reference") == "${paths.celebahq}"  # the complete CelebA-HQ, not the subset


def test_maskdit_main_and_two_sibling_unmasking_tunings():
    plan = runs("maskdit_in256.py")["default"]
    cfg = plan.cfg
    assert target_ref(cfg.model) == "backbone:maskdit_xl_2" and (cfg.model.img_size, cfg.model.in_chans) == (32, 4)
    main, cfg_tune, nocfg = cfg.stages.main, cfg.stages.unmask_cfg, cfg.stages.unmask_nocfg
    assert (main.steps, main.batch_size, opt(main), main.grad_clip) == (2_000_000, 1024, (1e-4, [0.9, 0.999], 0.0), None)
    assert (main.precision, main.label_dropout, main.masker.ratio) == ("bf16", 0.1, 0.5)
    assert (main.objective.mae_weight, main.objective.dsm_on) == (0.1, "unmasked")
    assert OmegaConf.to_container(main.ema) == {"decay": 0.9999, "every": 1, "start": 0}
    assert target_ref(cfg_tune.mask_schedule) == "mask_schedule:zero" and cfg_tune.steps == 75_000
    assert target_ref(nocfg.mask_schedule) == "mask_schedule:cosine" and nocfg.mask_schedule.power == 4
    assert nocfg.steps == 37_500 and nocfg.masker.ratio == 0.5
    for tune in (cfg_tune, nocfg):
        assert (tune.optimizer.lr, tune.precision, tune.init_from.stage) == (5e-5, "fp32", "main")
    assert cfg.train.tf32 is True
    assert [(s.name, s.parent) for s in plan.stages] == [("main", None), ("unmask_cfg", "main"),
                                                         ("unmask_nocfg", "main")]
    ev = cfg.evaluation
    assert (target_ref(ev.sampler), ev.sampler.steps, ev.guidance_scale, ev.num_samples) == \
        ("sampler:edm_heun", 40, 1.5, 50_000)


def test_maskdit_table2_ablations():
    grid = runs("maskdit_in256_table2.py")
    cells = {name: (target_ref(p.cfg.model), p.cfg.stages.main.masker.ratio, p.cfg.stages.main.objective.mae_weight,
                    p.cfg.stages.main.objective.dsm_on) for name, p in grid.items()}
    assert cells == {
        "dit_m0": ("backbone:dit_xl_2", 0.0, 0.0, "unmasked"), "dit_m50": ("backbone:dit_xl_2", 0.5, 0.0, "unmasked"),
        "dit_m75": ("backbone:dit_xl_2", 0.75, 0.0, "unmasked"),
        "ours_m0": ("backbone:maskdit_xl_2", 0.0, 0.0, "unmasked"),
        "ours_m50": ("backbone:maskdit_xl_2", 0.5, 0.0, "unmasked"),
        "ours_m75": ("backbone:maskdit_xl_2", 0.75, 0.0, "unmasked"),
        "lambda0.01": ("backbone:maskdit_xl_2", 0.5, 0.01, "unmasked"),
        "lambda0.1": ("backbone:maskdit_xl_2", 0.5, 0.1, "unmasked"),
        "lambda1.0": ("backbone:maskdit_xl_2", 0.5, 1.0, "unmasked"),
        "full_lambda0": ("backbone:maskdit_xl_2", 0.5, 0.0, "full"),
        "full_lambda0.1": ("backbone:maskdit_xl_2", 0.5, 0.1, "full"),
    }
    for p in grid.values():
        main = p.cfg.stages.main
        assert (main.steps, main.batch_size, list(p.cfg.stages)) == (400_000, 1024, ["main"])
        assert p.cfg.evaluation.guidance_scale == 1.0
    assert grid["dit_m50"].cfg.model.learn_sigma is False


def test_maskdit_512_follows_the_official_setting():
    cfg = runs("maskdit_in512.py")["default"].cfg
    assert cfg.model.img_size == 64 and list(cfg.stages) == ["main", "unmask"]
    assert (cfg.stages.unmask.steps, target_ref(cfg.stages.unmask.mask_schedule)) == (50_000, "mask_schedule:zero")
    assert (cfg.launch.slurm.nodes, cfg.launch.slurm.gpus_per_node) == (4, 8)
    assert raw(cfg.data.dataset, "root") == "${paths.imagenet512_latents}" and cfg.evaluation.stage == "unmask"


def test_one_path_override_moves_data_and_fid_reference():
    (plan,) = build_plans(REPO / "recipes" / "maskdm_celebahq256_l.py", ["paths.celebahq=/datasets/chq"])
    resolved = OmegaConf.to_container(plan.cfg, resolve=True)
    assert resolved["data"]["dataset"]["root"] == "/datasets/chq" and resolved["evaluation"]["reference"] == "/datasets/chq"


def test_each_paper_samples_and_masks_as_its_own_code():
    """maskdm (gaussian_ddpm.py ddim_sample) keeps the network's raw epsilon after clipping x0 and
    counts masks its own way (whole blocks, square crops); MaskDiT (models/maskdit.py get_mask)
    keeps int(N(1 - r)) tokens; DiT trains L_simple + L_vlb, samples the learned variance with 250
    respaced steps and guides 3 of 4 latent channels (models.py forward_with_cfg)."""
    grid = runs("maskdm_celeba64_table1.py")
    assert grid["m50_patch"].cfg.evaluation.sampler.eps_after_clip == "raw"
    assert grid["m50_patch"].cfg.stages.pretrain.sample.sampler.eps_after_clip == "raw"
    assert grid["m50_block2"].cfg.stages.pretrain.masker.rounding == "whole_blocks"
    assert grid["m50_crop"].cfg.stages.pretrain.masker.rounding == "square_window"
    for name in ("maskdit_in256.py", "maskdit_in256_table2.py"):
        for plan in runs(name).values():
            for stage in plan.cfg.stages.values():
                if target_ref(stage.masker) == "masker:patch":
                    assert stage.masker.rounding == "keep_floor", (name, plan.run_name)
    table2 = runs("maskdit_in256_table2.py")
    for name, plan in table2.items():  # MaskDiT: a mask token exactly when the MAE loss is on (lambda > 0)
        if target_ref(plan.cfg.model) == "backbone:maskdit_xl_2":
            assert plan.cfg.model.mask_token == (plan.cfg.stages.main.objective.mae_weight > 0), name
    assert sum(target_ref(p.cfg.model) == "backbone:maskdit_xl_2" for p in table2.values()) >= 6
    dit = runs("dit_in256.py")["default"].cfg
    assert dit.model.learn_sigma is True and target_ref(dit.stages.main.objective) == "objective:iddpm_hybrid"
    assert dit.stages.main.objective.guided_channels == 3
    ev = dit.evaluation
    assert (target_ref(ev.sampler), ev.sampler.steps, ev.guidance_scale) == ("sampler:ddpm_learned", 250, 1.5)
