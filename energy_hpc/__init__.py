"""energy_hpc: energy per accuracy of text classifiers, measured on Slurm HPC clusters."""

from __future__ import annotations

__version__ = "0.1.0"
RECORD_SCHEMA_VERSION = 1


def _config_tree_of_a_checkout() -> None:
    """Make ``energy_hpc.hydra_conf`` importable when this package is imported from a source
    checkout that is not an editable install (e.g. ``pip install .`` then running from the
    repository root): installs map the top-level ``hydra_conf/`` there, a bare checkout does not."""
    import importlib.util
    import sys
    from pathlib import Path

    if importlib.util.find_spec(f"{__name__}.hydra_conf") is not None:
        return
    tree = Path(__file__).resolve().parent.parent / "hydra_conf"
    if not (tree / "__init__.py").is_file():
        return
    spec = importlib.util.spec_from_file_location(f"{__name__}.hydra_conf", tree / "__init__.py",
                                                  submodule_search_locations=[str(tree)])
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_config_tree_of_a_checkout()
