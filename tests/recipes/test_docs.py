"""docs/recipes.md lists every recipe and every sweep element with its paper number."""
import pytest

from mdreg.runs.plan import build_plans
from tests.recipes.tiny_overrides import RECIPES, REPO

DOC = (REPO / "docs" / "recipes.md").read_text()


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_and_element_has_a_row(name):
    stem = name[:-3]
    assert f"`{stem}`" in DOC
    for plan in build_plans(REPO / "recipes" / name, []):
        element = plan.sweep_values.get("_name_")
        if element is not None and not stem.startswith("toy_"):
            row = next((line for line in DOC.splitlines() if f"`{stem}`@`{element}`" in line), None)
            assert row is not None, f"{stem}@{element} has no row in docs/recipes.md"
            assert plan.cfg.evaluation.paper in row  # the row quotes the recipe's paper number
            assert f"--only {element}`" in row
