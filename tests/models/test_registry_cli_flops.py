"""``tools/registry.py show BACKBONE --flops``."""
from __future__ import annotations

import pytest

from mdreg.errors import RegistryError, ConfigError
from mdreg.commands.registry import main


def test_show_flops_prints_table_params_and_gmacs(capsys):
    main(["show", "dit_s_2", "--flops", "--arg", "learn_sigma=True", "--img-size", "32", "--in-chans", "4"])
    out = capsys.readouterr().out
    assert "| name" in out and "blocks" in out  # fvcore's parameter table
    assert "parameters: 32.96M" in out and "forward: 6.06 GMACs" in out  # DiT paper, Table 4: S/2 6.06


def test_show_flops_with_masking(capsys):
    main(["show", "maskdm_s", "--flops", "--mask-ratio", "0.5", "--table-depth", "1"])
    out = capsys.readouterr().out
    assert "256 tokens, 128 visible at mask ratio 0.5" in out


def test_show_flops_errors():
    with pytest.raises(RegistryError, match="needs a backbone"):
        main(["show", "ddim", "--flops"])
    with pytest.raises(ConfigError, match="has no argument 'depthh'"):
        main(["show", "dit", "--flops", "--arg", "depthh=2"])
