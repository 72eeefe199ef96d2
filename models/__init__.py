"""Pydantic contracts shared by every part of Metacentric."""

from models.analysis import Analysis, PlatformCopy, PlatformPlan, ScheduledPost
from models.budget import BudgetDecision, DecisionOutcome
from models.campaign import Campaign, Creative, Targeting
from models.metrics import AdMetrics, PostMetrics
from models.platform import ALL_PLATFORMS, Platform
from models.publish import PublishResult, PublishStatus

__all__ = [
    "ALL_PLATFORMS",
    "AdMetrics",
    "Analysis",
    "BudgetDecision",
    "Campaign",
    "Creative",
    "DecisionOutcome",
    "Platform",
    "PlatformCopy",
    "PlatformPlan",
    "PostMetrics",
    "PublishResult",
    "PublishStatus",
    "ScheduledPost",
    "Targeting",
]
