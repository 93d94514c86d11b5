"""Work in progress in this session: the hillie plugin (see its issue)."""
