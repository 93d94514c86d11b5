"""Work in progress in this session: the skf plugin (see its issue)."""
