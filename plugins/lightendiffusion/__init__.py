"""Work in progress in this session: the lightendiffusion plugin (see its issue)."""
