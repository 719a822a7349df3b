"""Physics-based simulator of the 45 grid events (issue 10 item 1; physics notes in docs/physics.md).

Windows follow docs/contracts.md, "Waveforms": float32 (3, 726) differential currents of phases A, B, C at
10 kHz on a 60 Hz system, in kA on the data set's 500 MVA, 230 kV reference system. Internal faults
come from `faults` (winding-frame fault currents seen through a randomised relay view), transients
from `transients` (core saturation, LC resonance, CT flux, ferroresonance, rectifier harmonics);
`common` holds the parameter table type, the data set's time protocol, the standing differential
current, noise and sampling jitter present in every window.
"""

from services.simulation.core import (
    RELAY_VIEWS,
    all_parameter_specs,
    class_generator,
    generate_dataset,
    parameter_specs,
    resolve_classes,
    simulate_event,
)

__all__ = ["RELAY_VIEWS", "all_parameter_specs", "class_generator", "generate_dataset",
           "parameter_specs", "resolve_classes", "simulate_event"]
