"""Execution: the engine facade, fragment feeds, residual plans in DataFusion, admission control."""
