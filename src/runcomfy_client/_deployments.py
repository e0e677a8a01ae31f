"""Serverless deployments (``client.deployments``): list, get, create, update, delete, enable.

Every operation is written once, as a flow (see ``_flow``): it sends the API calls it needs
through ``_lifecycle.send`` (retries, errors, the key) and returns the typed result. ``Client``
and ``AsyncClient`` drive the flows with their own driver: :class:`Deployments` and
:class:`AsyncDeployments` are thin, typed doors to the same flows.

Base URL: ``https://api.runcomfy.net`` (``serverless_base_url=`` or
``RUNCOMFY_SERVERLESS_BASE_URL``; plain http only on loopback, like the Model API's).
Creating a deployment is treated like a submit: it is not resent once it may have reached the
server (SubmissionUncertainError says so); reads, updates and deletes are retried as reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote, urlencode, urlsplit

from ._errors import InputValidationError, ResponseDecodeError, SubmissionUncertainError
from ._flow import Flow
from ._protocol import Call, check_base_url

if TYPE_CHECKING:  # annotations only: typing.Unpack is 3.11+
    from typing_extensions import Unpack

    from ._core import ClientCore
    from ._drivers import AsyncDriver, SyncDriver

__all__ = [
    "AsyncDeployments",
    "Deployment",
    "DeploymentChanges",
    "DeploymentPayload",
    "DeploymentSettings",
    "Deployments",
    "serverless_base_url",
]

DEFAULT_SERVERLESS_BASE_URL = "https://api.runcomfy.net"
SERVERLESS_BASE_URL_ENV = "RUNCOMFY_SERVERLESS_BASE_URL"
_PATH = "/prod/v2/deployments"
DeploymentList = list["Deployment"]  # a name that a method called `list` does not shadow


def serverless_base_url(value: str | None = None) -> str:
    """The Serverless API's base URL: the argument, else the environment, else RunComfy's."""
    return check_base_url(
        value or os.environ.get(SERVERLESS_BASE_URL_ENV) or DEFAULT_SERVERLESS_BASE_URL
    )


# -- typed records -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class DeploymentPayload:
    """What ``includes=payload`` adds: the deployed workflow, its default overrides, and where
    ComfyUI's node definitions for it are."""

    workflow_api_json: Mapping[str, Any] | None
    overrides: Mapping[str, Any] | None
    object_info_url: str | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DeploymentPayload | None:
        # Documented inside "payload"; accepted at the top level too.
        data = body.get("payload") if isinstance(body.get("payload"), Mapping) else body
        assert isinstance(data, Mapping)
        workflow, overrides = data.get("workflow_api_json"), data.get("overrides")
        url = _text(data.get("object_info_url"))
        if workflow is None and overrides is None and url is None:
            return None
        return cls(
            workflow if isinstance(workflow, Mapping) else None,
            overrides if isinstance(overrides, Mapping) else None,
            url,
        )


@dataclass(frozen=True)
class Deployment:
    """A Serverless deployment: a ComfyUI workflow version on chosen hardware."""

    id: str
    name: str
    workflow_id: str | None = None
    workflow_version: str | None = None
    hardware: tuple[str, ...] = ()
    min_instances: int | None = None
    max_instances: int | None = None
    queue_size: int | None = None
    keep_warm_duration_in_seconds: int | None = None
    status: str | None = None
    is_enabled: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None
    payload: DeploymentPayload | None = None
    readme: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Any) -> Deployment:
        """A record from the API; ResponseDecodeError when it has no id or name."""
        if not isinstance(body, Mapping):
            raise ResponseDecodeError(
                f"a deployment record is an object, not {type(body).__name__}"
            )
        deployment_id, name = body.get("id"), body.get("name")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise ResponseDecodeError(f"a deployment record without an id: {dict(body)!r:.200}")
        hardware = body.get("hardware")
        if isinstance(hardware, str):
            hardware = [hardware]
        enabled = body.get("is_enabled")
        return cls(
            id=deployment_id,
            name=name if isinstance(name, str) else "",
            workflow_id=_text(body.get("workflow_id")),
            workflow_version=_text(body.get("workflow_version")),
            hardware=tuple(h for h in hardware if isinstance(h, str))
            if isinstance(hardware, list)
            else (),
            min_instances=_int(body.get("min_instances")),
            max_instances=_int(body.get("max_instances")),
            queue_size=_int(body.get("queue_size")),
            keep_warm_duration_in_seconds=_int(body.get("keep_warm_duration_in_seconds")),
            status=_text(body.get("status")),
            is_enabled=enabled if isinstance(enabled, bool) else None,
            created_at=_text(body.get("created_at")),
            updated_at=_text(body.get("updated_at")),
            payload=DeploymentPayload.from_body(body),
            readme=_text(body.get("readme")),
            raw=dict(body),
        )

    def as_dict(self) -> dict[str, Any]:
        """The record as the CLI's ``--json`` prints it."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "hardware": list(self.hardware),
            "min_instances": self.min_instances,
            "max_instances": self.max_instances,
            "queue_size": self.queue_size,
            "keep_warm_duration_in_seconds": self.keep_warm_duration_in_seconds,
            "status": self.status,
            "is_enabled": self.is_enabled,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.payload is not None:
            data["payload"] = {
                "workflow_api_json": self.payload.workflow_api_json,
                "overrides": self.payload.overrides,
                "object_info_url": self.payload.object_info_url,
            }
        if self.readme is not None:
            data["readme"] = self.readme
        return data


# -- checking settings before anything is sent --------------------------------------------------

# The settings a deployment takes, in JSON Schema: checked by the one validator, so mistakes
# read like any input's ("max_instances: 0 is below the minimum 1").
_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "workflow_id": {"type": "string", "minLength": 1},
        "workflow_version": {"type": "string", "minLength": 1},
        "hardware": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "min_instances": {"type": "integer", "minimum": 0},
        "max_instances": {"type": "integer", "minimum": 1},
        "queue_size": {"type": "integer", "minimum": 0},
        "keep_warm_duration_in_seconds": {"type": "integer", "minimum": 0},
        "is_enabled": {"type": "boolean"},
    },
    "additionalProperties": False,
}
_settings_model: Any = None


def _check(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as sent; InputValidationError listing every problem, nothing sent."""
    global _settings_model  # noqa: PLW0603 - compiled once, on first use
    from ._registry import model_from_schema
    from ._validation import Problem

    if _settings_model is None:
        _settings_model = model_from_schema("deployment settings", _SETTINGS_SCHEMA)
    hardware = settings.get("hardware")
    if isinstance(hardware, str):
        settings["hardware"] = [hardware]
    payload, problems = _settings_model.validator.check(settings)
    if isinstance(settings.get("hardware"), list) and len(settings["hardware"]) != 1:
        problems.append(
            Problem(
                "invalid",
                "give exactly one hardware SKU (the API takes a list but supports one)",
                "hardware",
                "hardware",
                settings["hardware"],
            )
        )
    low, high = settings.get("min_instances"), settings.get("max_instances")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        problems.append(
            Problem(
                "invalid",
                f"{high} is below min_instances {low}",
                "max_instances",
                "max_instances",
                high,
            )
        )
    if problems:
        raise InputValidationError("deployment settings", problems)
    return payload  # type: ignore[no-any-return]


class DeploymentSettings(TypedDict, total=False):
    """A deployment's capacity settings; :meth:`Deployments.create` fills in the API's usual
    defaults for any not given (``CREATE_DEFAULTS``)."""

    hardware: str | Sequence[str]
    """One GPU SKU, e.g. ``AMPERE_48`` (the API takes a list of exactly one)."""
    min_instances: int
    """Instances kept warm (billed while idle when above 0)."""
    max_instances: int
    queue_size: int
    """Queued jobs per instance before another instance starts."""
    keep_warm_duration_in_seconds: int


class DeploymentChanges(DeploymentSettings, total=False):
    """What :meth:`Deployments.update` may change (only what is given is sent)."""

    name: str
    workflow_version: str
    is_enabled: bool


CREATE_DEFAULTS: DeploymentSettings = {
    "hardware": "AMPERE_48",
    "min_instances": 0,
    "max_instances": 1,
    "queue_size": 1,
    "keep_warm_duration_in_seconds": 60,
}


def _given(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given (None counts as not given); hardware always as a list."""
    found = {k: v for k, v in settings.items() if v is not None}
    hardware = found.get("hardware")
    if hardware is not None and not isinstance(hardware, str):
        found["hardware"] = list(hardware)
    return found


# -- the flows -----------------------------------------------------------------------------------


def _query(ids: Iterable[str] = (), payload: bool = False, readme: bool = False) -> str:
    pairs = [("ids", i) for i in ids]
    pairs += [("includes", "payload")] if payload else []
    pairs += [("includes", "readme")] if readme else []
    return f"?{urlencode(pairs)}" if pairs else ""


def _one(deployment_id: str) -> str:
    if not isinstance(deployment_id, str) or not deployment_id.strip():
        raise ValueError(f"a deployment id is a non-empty string, not {deployment_id!r}")
    return f"{_PATH}/{quote(deployment_id.strip(), safe='')}"


def _send(core: ClientCore[Any], call: Call) -> Flow[Mapping[str, Any]]:
    from ._lifecycle import send

    return (yield from send(core, call))


def list_flow(
    core: ClientCore[Any], ids: Sequence[str], payload: bool, readme: bool
) -> Flow[list[Deployment]]:
    base = core.serverless_base_url
    call = Call("GET", _PATH + _query(ids, payload, readme), base_url=base, list_key="items")
    body = yield from _send(core, call)
    # The API answers a bare array; a wrapped {"deployments": [...]} is accepted too.
    items = body.get("items", body.get("deployments"))
    if not isinstance(items, list):
        raise ResponseDecodeError(f"the deployments list is not a list: {dict(body)!r:.200}")
    return [Deployment.from_body(item) for item in items]


def get_flow(
    core: ClientCore[Any], deployment_id: str, payload: bool, readme: bool
) -> Flow[Deployment]:
    path = _one(deployment_id) + _query((), payload, readme)
    body = yield from _send(core, Call("GET", path, base_url=core.serverless_base_url))
    return Deployment.from_body(body)


def create_flow(
    core: ClientCore[Any],
    name: str,
    workflow_id: str,
    workflow_version: str,
    settings: DeploymentSettings,
) -> Flow[Deployment]:
    given = {"name": name, "workflow_id": workflow_id, "workflow_version": workflow_version}
    sent = _check({**CREATE_DEFAULTS, **_given(settings), **given})
    try:
        call = Call("POST", _PATH, sent, base_url=core.serverless_base_url, is_submit=True)
        body = yield from _send(core, call)
    except SubmissionUncertainError as exc:
        raise SubmissionUncertainError(
            f"creating deployment {name!r}: the request was sent but its answer was lost, so the "
            "deployment may exist; it was NOT sent again. Check with `runcomfy-client "
            f"deployments list` before creating it again. ({exc})"
        ) from None
    return Deployment.from_body(body)


def update_flow(
    core: ClientCore[Any], deployment_id: str, changes: DeploymentChanges
) -> Flow[Deployment]:
    base = core.serverless_base_url
    path = _one(deployment_id)
    given = _given(changes)
    if not given:
        raise ValueError("nothing to update: give at least one setting to change")
    sent = _check(given)
    if "name" not in sent:
        # The API refuses a PATCH without the name: carry the current one over.
        current = yield from _send(core, Call("GET", path, base_url=base))
        sent = {"name": Deployment.from_body(current).name, **sent}
    body = yield from _send(core, Call("PATCH", path, sent, base_url=base))
    return Deployment.from_body(body)


def delete_flow(core: ClientCore[Any], deployment_id: str) -> Flow[None]:
    yield from _send(core, Call("DELETE", _one(deployment_id), base_url=core.serverless_base_url))


def object_info_flow(core: ClientCore[Any], deployment: Deployment) -> Flow[dict[str, Any]]:
    """The deployment's ``object_info`` (fetch it with ``payload=True`` first)."""
    url = deployment.payload.object_info_url if deployment.payload else None
    if not url:
        raise ValueError(
            f"deployment {deployment.id} has no object_info_url: get it with payload=True"
        )
    base = core.serverless_base_url
    own = urlsplit(base)
    link = urlsplit(url if "://" in url else base + url)
    same_host = (link.scheme, link.netloc) == (own.scheme, own.netloc)
    path = link.path + (f"?{link.query}" if link.query else "")
    # The API key goes only to the API's own host, never to a storage link elsewhere.
    origin = check_base_url(f"{link.scheme}://{link.netloc}")
    body = yield from _send(core, Call("GET", path, base_url=origin, authenticated=same_host))
    return dict(body)


# -- the doors -------------------------------------------------------------------------------------


class _Door:
    """What both doors share: the client's core, and where the API is."""

    _core: ClientCore[Any]

    @property
    def base_url(self) -> str:
        return self._core.serverless_base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Deployments(_Door):
    """``client.deployments``: the Serverless API's deployments, for :class:`Client`."""

    def __init__(self, core: ClientCore[Any], driver: SyncDriver) -> None:
        self._core = core
        self._run = driver.run

    def list(
        self, *, ids: Sequence[str] = (), payload: bool = False, readme: bool = False
    ) -> DeploymentList:
        """Every deployment of the account (only ``ids`` when given)."""
        return self._run(list_flow(self._core, ids, payload, readme))

    def get(self, deployment_id: str, *, payload: bool = False, readme: bool = False) -> Deployment:
        """One deployment; ``payload=True`` adds its workflow, overrides and object_info_url."""
        return self._run(get_flow(self._core, deployment_id, payload, readme))

    def create(
        self,
        *,
        name: str,
        workflow_id: str,
        workflow_version: str,
        **settings: Unpack[DeploymentSettings],
    ) -> Deployment:
        """Deploy a cloud-saved workflow version (never resent once it may have been created)."""
        return self._run(create_flow(self._core, name, workflow_id, workflow_version, settings))

    def update(self, deployment_id: str, **changes: Unpack[DeploymentChanges]) -> Deployment:
        """Change the given settings (the current name is sent along when not changed)."""
        return self._run(update_flow(self._core, deployment_id, changes))

    def enable(self, deployment_id: str) -> Deployment:
        return self.update(deployment_id, is_enabled=True)

    def disable(self, deployment_id: str) -> Deployment:
        """Pause a deployment: it refuses new jobs (error 10002) until enabled again."""
        return self.update(deployment_id, is_enabled=False)

    def delete(self, deployment_id: str) -> None:
        self._run(delete_flow(self._core, deployment_id))

    def object_info(self, deployment: Deployment | str) -> dict[str, Any]:
        """ComfyUI's node definitions for a deployment's workflow (from its object_info_url)."""
        if isinstance(deployment, str):
            deployment = self.get(deployment, payload=True)
        return self._run(object_info_flow(self._core, deployment))


class AsyncDeployments(_Door):
    """``client.deployments`` for :class:`AsyncClient`: the same methods, awaited."""

    def __init__(self, core: ClientCore[Any], driver: AsyncDriver) -> None:
        self._core = core
        self._run = driver.run

    async def list(
        self, *, ids: Sequence[str] = (), payload: bool = False, readme: bool = False
    ) -> DeploymentList:
        return await self._run(list_flow(self._core, ids, payload, readme))

    async def get(
        self, deployment_id: str, *, payload: bool = False, readme: bool = False
    ) -> Deployment:
        return await self._run(get_flow(self._core, deployment_id, payload, readme))

    async def create(
        self,
        *,
        name: str,
        workflow_id: str,
        workflow_version: str,
        **settings: Unpack[DeploymentSettings],
    ) -> Deployment:
        flow = create_flow(self._core, name, workflow_id, workflow_version, settings)
        return await self._run(flow)

    async def update(self, deployment_id: str, **changes: Unpack[DeploymentChanges]) -> Deployment:
        return await self._run(update_flow(self._core, deployment_id, changes))

    async def enable(self, deployment_id: str) -> Deployment:
        return await self.update(deployment_id, is_enabled=True)

    async def disable(self, deployment_id: str) -> Deployment:
        return await self.update(deployment_id, is_enabled=False)

    async def delete(self, deployment_id: str) -> None:
        await self._run(delete_flow(self._core, deployment_id))

    async def object_info(self, deployment: Deployment | str) -> dict[str, Any]:
        if isinstance(deployment, str):
            deployment = await self.get(deployment, payload=True)
        return await self._run(object_info_flow(self._core, deployment))
