"""A local emulator of RunComfy's Model API and Serverless API: a real HTTP server for tests,
CI and demos.

Needs the ``emulator`` extra (``pip install 'runcomfy-client[emulator]'``).
"""

from .._extras import require_extra

require_extra("emulator", "the emulator")  # its own message, before aiohttp's ImportError

from ._faults import (  # noqa: E402
    ANSWER_SWITCHES,
    FAULT_KINDS,
    Fault,
    FaultPlan,
    check_answers,
    parse_fault,
)
from ._runner import Emulator  # noqa: E402
from ._serverless import ServedDeployment, parse_deployment_spec  # noqa: E402

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
