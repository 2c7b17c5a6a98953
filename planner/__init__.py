"""SQL text -> FederatedPlan: parsing, name resolution, pushdown rules, fragments and the residual plan."""

from planner.plan import FederatedPlan, NotPushed
from planner.planner import Planner

__all__ = ["FederatedPlan", "NotPushed", "Planner"]
