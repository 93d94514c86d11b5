"""Work in progress in this session: metric variants of the seed papers (issue 15)."""
