"""Physics-based simulator of the 45 grid events (issue 2).

Windows follow DESIGN.md section 3: float32 (3, 726) differential currents of phases A, B, C at
10 kHz on a 60 Hz system. Internal faults come from `faults` (winding-frame fault currents mapped
through each unit's connection matrix), transients from `transients` (core saturation, LC
resonance, CT flux, ferroresonance, rectifier harmonics); `common` holds the background (CT
mismatch, magnetising current, noise) present in every window.
"""

from services.simulation.core import generate_dataset, parameter_specs, simulate_event

__all__ = ["generate_dataset", "parameter_specs", "simulate_event"]
