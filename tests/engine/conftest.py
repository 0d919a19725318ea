import tests.engine.objectives  # noqa: F401  (registers the test-only components)
