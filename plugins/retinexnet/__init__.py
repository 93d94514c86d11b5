"""Work in progress in this session: the retinexnet plugin (see its issue)."""
