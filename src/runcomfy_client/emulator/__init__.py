"""A local emulator of RunComfy's Model API and Serverless API: a real HTTP server for tests,
CI and demos.

Needs the ``emulator`` extra (``pip install 'runcomfy-client[emulator]'``).
"""

from ._faults import (
    ANSWER_SWITCHES,
    FAULT_KINDS,
    Fault,
    FaultPlan,
    check_answers,
    parse_fault,
)
from ._runner import Emulator
from ._serverless import ServedDeployment, parse_deployment_spec

__all__ = [
    "ANSWER_SWITCHES",
    "FAULT_KINDS",
    "Emulator",
    "Fault",
    "FaultPlan",
    "ServedDeployment",
    "check_answers",
    "parse_deployment_spec",
    "parse_fault",
]
