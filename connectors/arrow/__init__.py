"""Arrow plumbing shared by every layer above: the one DataFusion session factory and batch streams."""
