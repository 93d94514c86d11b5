"""Work in progress in this session: the drbn plugin (see its issue)."""
