"""Deprecated alias of :mod:`llbench.api.datasets` (the plugin API moved to ``llbench.api`` in 0.1).

Plugins written against the earlier layout keep loading; import from ``llbench.api`` instead.
This alias goes away in 0.2.
"""

import warnings

from llbench.api import datasets as _moved

warnings.warn(
    "llbench.datasets_api is deprecated: import from llbench.api (e.g. `from llbench.api import "
    "hookimpl, MethodSpec, Method`)",
    DeprecationWarning,
    stacklevel=2,
)
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})
