"""Small-tensor tests: one intra-op thread (see tests/torch_threads.py)."""
from tests.torch_threads import one_thread  # noqa: F401
