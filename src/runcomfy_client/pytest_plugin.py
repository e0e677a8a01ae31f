"""pytest plugin: an emulator per test session, and clients pointed at it.

Installed with the package (entry point ``runcomfy_emulator``), so in your own tests::

    def test_my_pipeline(runcomfy_client):
        result = runcomfy_client.run("community/wan-2-2/fun-inpaint", {...})

Fixtures: ``runcomfy_emulator`` (session-scoped :class:`Emulator`), ``runcomfy_client``
(a :class:`~runcomfy_client.Client`) and ``runcomfy_async_client``. Override
``runcomfy_emulator_options`` to change the emulator's settings.

The plugin loads with every install, so it imports nothing beyond pytest and this package's
base: without the ``emulator`` extra it still loads, and a test that asks for one of its
fixtures fails with a message naming the extra (every other test runs as usual).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._client import AsyncClient, Client
    from ._polling import PollingPolicy
    from .emulator import Emulator

EXTRA_MISSING = (
    "the runcomfy_emulator fixture needs the emulator extra, which is not installed: "
    "pip install 'runcomfy-client[emulator]'"
)


def _emulator_class() -> type[Emulator]:
    try:
        from .emulator import Emulator
    except ImportError as exc:
        pytest.fail(f"{EXTRA_MISSING} ({exc})", pytrace=False)
    return Emulator


def _polling_for(emulator: Emulator) -> PollingPolicy:
    """Poll at a quarter of the emulator's job time: its jobs take a fraction of real ones, so
    the real API's 3 s pace would make every test wait seconds per job."""
    from ._polling import PollingPolicy, PollingSettings

    interval = min(3.0, max(0.01, emulator.config.job_seconds / 4))
    return PollingPolicy(PollingSettings.with_interval(interval))


@pytest.fixture(scope="session")
def runcomfy_emulator_options() -> dict[str, Any]:
    """Keyword arguments for the session's :class:`Emulator` (override to change them)."""
    # Tests often serve their inputs from this machine (a local HTTP or S3 server); the
    # emulator is bound to loopback for the session only, so it may fetch from there.
    return {"job_seconds": 0.2, "workers": 4, "allow_private_inputs": True}


@pytest.fixture(scope="session")
def runcomfy_emulator(runcomfy_emulator_options: dict[str, Any]) -> Iterator[Emulator]:
    """One emulator for the whole test session, on a free port."""
    with _emulator_class()(**runcomfy_emulator_options) as emulator:
        yield emulator


@pytest.fixture
def runcomfy_client(runcomfy_emulator: Emulator) -> Iterator[Client]:
    """A :class:`Client` talking to the session's emulator."""
    from ._client import Client

    with Client(
        base_url=runcomfy_emulator.base_url,
        api_key=runcomfy_emulator.api_key,
        polling=_polling_for(runcomfy_emulator),
    ) as client:
        yield client


@pytest.fixture
async def runcomfy_async_client(runcomfy_emulator: Emulator) -> AsyncIterator[AsyncClient]:
    """An :class:`AsyncClient` talking to the session's emulator (needs pytest-asyncio)."""
    from ._client import AsyncClient

    async with AsyncClient(
        base_url=runcomfy_emulator.base_url,
        api_key=runcomfy_emulator.api_key,
        polling=_polling_for(runcomfy_emulator),
    ) as client:
        yield client
