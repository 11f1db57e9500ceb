"""Makes gemma-3-270m a tiny model in every process of `python -m harness` (the runner, the
transformers reference, the pytest checks), for tests/harness/run/test_emulated_devices.py.

Python imports `sitecustomize` at start-up from the first sys.path entry that holds one, so
putting this folder on PYTHONPATH reaches the children the runner starts, which inherit the
environment. Active only when $TINY_HARNESS_CONFIG names a hub-style config.json: then the
registry's config for size 270m and the synthetic writer's config.json both come from it.
"""

import os
from pathlib import Path

_CONFIG = os.environ.get("TINY_HARNESS_CONFIG")

if _CONFIG:
    import json

    from gemma3.config import Gemma3Config
    from harness.checkpoints import synthetic

    _hub = json.loads(Path(_CONFIG).read_text("utf-8"))
    _for_size = Gemma3Config.for_size.__func__  # type: ignore[attr-defined]

    def _tiny_for_size(cls, size: str) -> Gemma3Config:
        if size == "270m":
            return cls.from_hf_config(_hub, source=_CONFIG)
        return _for_size(cls, size)

    Gemma3Config.for_size = classmethod(_tiny_for_size)  # type: ignore[method-assign]
    synthetic.HUB_CONFIGS = Path(_CONFIG).parent  # holds gemma-3-270m.json
