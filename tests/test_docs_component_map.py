"""docs/components.md's name-to-module table is generated from the registry; it must not go stale."""
from pathlib import Path

from mdreg.commands.registry import MAP_END, MAP_START, component_map

DOC = Path(__file__).resolve().parents[1] / "docs" / "components.md"


def test_the_component_map_in_the_docs_is_current():
    text = DOC.read_text()
    assert MAP_START in text and MAP_END in text
    committed = text.split(MAP_START, 1)[1].split(MAP_END, 1)[0].strip()
    assert committed == component_map(), ("docs/components.md is stale: run "
                                          "python tools/registry.py map --write docs/components.md")


def test_the_map_names_every_registered_module_that_exists():
    repo = DOC.parents[1]
    for line in component_map().splitlines()[2:]:
        module = line.rsplit("`", 2)[-2]
        assert (repo / module).is_file(), line
