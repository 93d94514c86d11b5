"""Evaluation: planning runs (names -> plan and key), executing plans, training, scoring."""
