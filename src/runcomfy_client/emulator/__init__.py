"""A local emulator of the RunComfy Model API: a real HTTP server for tests, CI and demos.

Needs the ``emulator`` extra (``pip install 'runcomfy-client[emulator]'``).
"""

from ._faults import FAULT_KINDS, Fault, FaultPlan, parse_fault
from ._runner import Emulator

__all__ = ["FAULT_KINDS", "Emulator", "Fault", "FaultPlan", "parse_fault"]
