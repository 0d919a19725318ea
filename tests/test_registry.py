"""Registry: decorator registration, aliases, force, lookup errors, listing."""
import subprocess
import sys

import pytest

from mdreg.errors import RegistryError
from mdreg.registry import BACKBONES, REGISTRIES, Registry, find, lookup
from tests.tiny import REPO


def test_register_with_name_aliases_and_default_name():
    reg = Registry("widget")

    @reg.register("big_widget", aliases=("bw",))
    class BigWidget:
        """A big widget."""

    @reg.register
    def small_widget(size: int = 3):
        """A small widget.

        More text that is not the summary."""

    assert reg.get("big_widget") is BigWidget
    assert reg.get("bw") is BigWidget
    assert reg.get("small_widget") is small_widget
    entry = reg.entry("small_widget")
    assert entry.summary == "A small widget."
    assert entry.signature == "(size: int = 3)"
    assert [e.name for e in reg] == ["big_widget", "small_widget"]


def test_duplicate_name_or_alias_is_an_error_unless_forced():
    reg = Registry("widget")
    reg.add("a", int, aliases=("x",))
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("a", float)
    with pytest.raises(RegistryError, match="'x' is already registered"):
        reg.add("b", float, aliases=("x",))
    reg.add("a", float, force=True)
    assert reg.get("a") is float
    assert "x" not in reg  # the replaced entry's aliases went with it


def test_unknown_name_names_the_kind_and_closest_names():
    with pytest.raises(RegistryError) as info:
        BACKBONES.get("maskdm_ss")
    msg = str(info.value)
    assert "unknown backbone 'maskdm_ss'" in msg
    assert "did you mean 'maskdm_s'" in msg
    assert "tools/registry.py list backbone" in msg


def test_builtins_are_registered_on_import():
    for kind in ("backbone", "masker", "noise_schedule", "objective", "sampler", "dataset", "stage"):
        assert len(REGISTRIES[kind]) > 0, kind
    assert lookup("backbone:maskdm_s").__name__ == "maskdm_s"
    assert [e.ref for e in find("mdsm")] == ["objective:mdsm"]


@pytest.mark.parametrize("args,expected", [
    (["list"], "maskdm_s"),
    (["list", "masker"], "patch"),
    (["show", "ddim"], "sampler:ddim"),
])
def test_registry_tool_prints_tables(args, expected):
    out = subprocess.run([sys.executable, "tools/registry.py", *args], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert expected in out.stdout
    if args[0] == "list":
        header = out.stdout.splitlines()[0].split()
        assert header[:2] == ["kind", "name"] and "signature" in header and "summary" in header


def test_registry_tool_unknown_name_exits_2():
    out = subprocess.run([sys.executable, "tools/registry.py", "show", "maskdm_ss"], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 2
    assert "did you mean 'maskdm_s'" in out.stderr
    assert "Traceback" not in out.stderr


def test_force_takes_over_an_alias_without_dropping_its_entry():
    reg = Registry("widget")
    reg.add("alpha", int, aliases=("a", "first"))
    reg.add("a", float, force=True)  # 'a' was an alias of alpha: only the alias moves
    assert reg.get("a") is float and reg.get("alpha") is int and reg.get("first") is int
    assert reg.entry("alpha").aliases == ("first",)
    reg.add("alpha", str, force=True)  # an entry's own name: the entry is replaced
    assert reg.get("alpha") is str and "first" not in reg.all_names()


def test_repeated_aliases_are_refused():
    reg = Registry("widget")
    with pytest.raises(RegistryError, match="repeat a name"):
        reg.add("beta", int, aliases=("beta",))
    with pytest.raises(RegistryError, match="repeat a name"):
        reg.add("beta", int, aliases=("b", "b"))
