from tests.cli_runner import launch  # noqa: F401  (a fixture)
