"""Config files of this plugin's ablations (a package so wheels ship them)."""
