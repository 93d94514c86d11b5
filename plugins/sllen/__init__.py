"""Work in progress in this session: the sllen plugin (see its issue)."""
