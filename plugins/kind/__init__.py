"""Work in progress in this session: the kind plugin (see its issue)."""
