"""Maps the repository's folders to the ``llbench`` import package (see README, "Layout").

pyproject.toml holds all metadata; this file only lists packages, because the folders
``harness/``, ``plugins/``, ``datasets/``, ``metrics/``, ``segmenters/``, ``executors/`` and
``reports/`` install as ``llbench``, ``llbench.plugins``, ``llbench.datasets``, ``llbench.metrics``,
``llbench.segmenters`` and ``llbench.reports``.
"""

from setuptools import find_packages, setup

ROOTS = {
    "llbench": "harness",
    "llbench.plugins": "plugins",
    "llbench.datasets": "datasets",
    "llbench.reports": "reports",
    "llbench.metrics": "metrics",
    "llbench.segmenters": "segmenters",
    "llbench.executors": "executors",
}
packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS)
