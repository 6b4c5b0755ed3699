"""The config tree Hydra composes; shipped inside the package so non-editable installs work."""
