"""Package data of the core metrics (NIQE pristine parameters); see NOTICE.txt."""
