"""Table 2's ablations as config files (``*.toml``); a package so wheels ship them."""
