#!/usr/bin/env python
"""List and inspect registered components: ``python tools/registry.py list [KIND]`` / ``show NAME``."""
from mdreg.commands.entry import registry

if __name__ == "__main__":
    registry()
