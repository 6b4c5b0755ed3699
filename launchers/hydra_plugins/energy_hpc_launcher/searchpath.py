"""Site config folders join Hydra's search path ahead of the shipped configs (energy_hpc apps only).

``python -m energy_hpc --info searchpath`` lists them (provider ``energy_hpc-site``).
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin


class EnergyHpcSiteConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from energy_hpc.site_configs import PROVIDER, SHIPPED_PACKAGE, site_folders, warn_missing

        main = SearchPathQuery(provider="main", path=f"pkg://{SHIPPED_PACKAGE}")
        if search_path.find_first_match(main) < 0:
            return  # another Hydra app in this environment: leave its search path alone
        folders = site_folders()
        warn_missing(folders)
        for folder in folders.folders:  # each inserted just before the shipped tree: order kept
            search_path.prepend(provider=PROVIDER, path=f"file://{folder}", anchor=main)
