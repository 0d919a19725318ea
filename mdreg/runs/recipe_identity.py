"""Which recipe file made a run: two recipe files with the same name (``quickstart.py`` in two
folders) map to the same ``<output_root>/<recipe name>/<run>`` directory, and a config that
happens to be equal must not let one "resume" the other's run.

``meta.yaml`` records the recipe's resolved path and the sha256 of its text when a run is made
(:func:`recipe_record`). A relaunch from another path is the same recipe only if its text is
the same (a copy, another clone, a moved folder); otherwise it is refused before anything is
written (:func:`check_same_recipe`). Edits to the recipe at its own path are judged by the
config they produce (:func:`mdreg.runs.rundir.prepare`), not by its text: a comment changes nothing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from mdreg.errors import UserError


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recipe_record(recipe: Path) -> dict[str, str]:
    """``recipe_path`` and ``recipe_sha256`` for meta.yaml ({} for a recipe that is not a file)."""
    recipe = Path(recipe)
    if not recipe.is_file():
        return {}
    return {"recipe_path": str(recipe.resolve()), "recipe_sha256": _sha256(recipe)}


def check_same_recipe(recipe: Path, run_dir: Path, meta: dict) -> None:
    """Refuse ``recipe`` for ``run_dir`` when another recipe file with the same name made it."""
    recorded, digest = meta.get("recipe_path"), meta.get("recipe_sha256")
    recipe = Path(recipe)
    if not recorded or not digest or not recipe.is_file():  # runs made before this record; a job's own plan
        return
    if str(recipe.resolve()) == recorded or _sha256(recipe) == digest:
        return
    raise UserError(f"{run_dir} was made by the recipe {recorded}, not by {recipe.resolve()}: two recipe files "
                    f"named {recipe.name} share {run_dir.parent}. Nothing was changed. Give this recipe its own runs "
                    f"with train.output_root=OTHER_DIR (or train.run_name=NEW_NAME), or rename the file")
