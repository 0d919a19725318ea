"""The ``launch`` fixture: run ``tools/launch.py`` in this process and get (exit code, output)."""
from __future__ import annotations

import pytest

from mdreg.commands.entry import run_cli
from mdreg.commands.launch import main


@pytest.fixture
def launch(capsys):
    """``launch(*argv) -> (exit code, output)``. The outputs are printed at teardown, so
    that pytest shows them when the test fails."""
    outputs = []

    def run(*argv) -> tuple[int, str]:
        code = run_cli(main, [str(a) for a in argv])
        out = capsys.readouterr()
        outputs.append(f"$ tools/launch.py {' '.join(map(str, argv))}  -> {code}\n{out.out}{out.err}")
        return code, out.out + out.err

    yield run
    print("\n".join(outputs))
