"""Work in progress in this session: the mcmt plugin (see its issue)."""
