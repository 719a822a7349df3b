"""Impact rules: what a classified grid event does to the P2P microgrid and to a transfer."""

from services.grid import DEFAULT_TRANSFER_KW
from services.rules.events import SEVERITIES, EventRule, internal_fault_rule, transient_rule
from services.rules.impact import (
    LOCATION_CONFIDENCE_THRESHOLD,
    MATERIAL_PROBABILITY,
    EventReading,
    ImpactInputError,
    ImpactReport,
    assess_impact,
    clear_caches,
    precompute,
    read_prediction,
)

__all__ = [
    "DEFAULT_TRANSFER_KW", "LOCATION_CONFIDENCE_THRESHOLD", "MATERIAL_PROBABILITY", "SEVERITIES", "EventReading",
    "EventRule", "ImpactInputError", "ImpactReport", "assess_impact", "clear_caches", "internal_fault_rule",
    "precompute", "read_prediction", "transient_rule",
]
