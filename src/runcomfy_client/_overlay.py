"""The overlay file of ``schema derive``: what a person adds to a schema derived from a workflow.

A JSON object, every part optional::

    {
      "title": "Lighthouse text-to-image",
      "description": "SDXL with our house style",
      "expose": ["6.text", "3.seed", "3.steps"],
      "fields": {
        "6.text":  {"name": "prompt", "title": "Prompt", "required": true},
        "3.steps": {"minimum": 10, "maximum": 40},
        "3.sampler_name": {"enum": ["euler", "dpmpp_2m"]},
        "9.filename_prefix": {"hide": true}
      },
      "fuse": [
        {"width": "5.width", "height": "5.height", "title": "Resolution (W:H)",
         "options": ["1024x1024 (1:1)", "1152x896 (9:7)", "896x1152 (7:9)"]}
      ]
    }

Fields are named ``<node id>.<input>`` as in ``--expose``. Ranges and choices may only be
narrowed; a width/height pair fused into one ``WxH`` enum is sent back as its two inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import SchemaError
from ._not_given import NOT_GIVEN

__all__ = ["FieldOverlay", "Fuse", "Overlay", "Target", "parse_targets"]

_FIELD_KEYS = frozenset(
    {"name", "title", "description", "required", "hide", "minimum", "maximum", "enum", "default"}
)
_FUSE_KEYS = frozenset(
    {"width", "height", "options", "name", "title", "description", "required", "default"}
)
_TOP_KEYS = frozenset({"title", "description", "expose", "fields", "fuse"})


@dataclass(frozen=True, order=True)
class Target:
    """One node input: ``6.text`` is input ``text`` of node ``6``."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"

    @property
    def key(self) -> str:
        """The schema's wire key: ``6_text``."""
        return f"{self.node}_{self.input}"

    @classmethod
    def parse(cls, text: str) -> Target:
        node, sep, name = text.strip().partition(".")
        if not sep or not node.strip() or not name.strip():
            raise ValueError(f"{text!r} is not NODE.INPUT (for example 6.text or 31.seed)")
        return cls(node.strip(), name.strip())


def parse_targets(value: str | Sequence[str]) -> list[Target]:
    """``"6.text,31.seed"`` or ``["6.text", "31.seed"]`` as targets, in order, without repeats."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    found: list[Target] = []
    for part in parts:
        if isinstance(part, str) and part.strip():
            target = Target.parse(part)
            if target not in found:
                found.append(target)
    return found


@dataclass(frozen=True)
class FieldOverlay:
    """Changes to one exposed field."""

    target: Target
    name: str | None = None
    title: str | None = None
    description: str | None = None
    required: bool = False
    hide: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None
    default: Any = NOT_GIVEN

    @property
    def has_default(self) -> bool:
        return self.default is not NOT_GIVEN


@dataclass(frozen=True)
class Fuse:
    """A width and a height input offered as one ``WxH`` choice."""

    width: Target
    height: Target
    options: tuple[str, ...]
    name: str | None = None
    title: str | None = None
    description: str | None = None
    required: bool = False
    default: str | None = None

    @property
    def key(self) -> str:
        return f"{self.width.key}x{self.height.key}"


@dataclass(frozen=True)
class Overlay:
    title: str | None = None
    description: str | None = None
    expose: tuple[Target, ...] | None = None
    fields: Mapping[Target, FieldOverlay] = field(default_factory=dict)
    fuse: tuple[Fuse, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, data: Any, *, file: str | None = None) -> Overlay:
        """Check and read an overlay; SchemaError names the file and the part that is wrong."""

        def fail(message: str, pointer: str) -> SchemaError:
            return SchemaError(message, file=file, pointer=pointer)

        if not isinstance(data, dict):
            raise fail(f"an overlay is a JSON object, not {type(data).__name__}", "")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise fail(
                f"unknown overlay key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}", f"/{unknown[0]}"
            )
        title = _text(data, "title", "", fail)
        description = _text(data, "description", "", fail)
        expose: tuple[Target, ...] | None = None
        if "expose" in data:
            listed = data["expose"]
            if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
                raise fail("'expose' must be a list of NODE.INPUT strings", "/expose")
            try:
                expose = tuple(parse_targets(listed))
            except ValueError as exc:
                raise fail(str(exc), "/expose") from None
        fields: dict[Target, FieldOverlay] = {}
        raw_fields = data.get("fields", {})
        if not isinstance(raw_fields, dict):
            raise fail("'fields' must be an object keyed by NODE.INPUT", "/fields")
        for text, entry in raw_fields.items():
            where = f"/fields/{_escape(text)}"
            try:
                target = Target.parse(text)
            except ValueError as exc:
                raise fail(str(exc), where) from None
            fields[target] = _field(target, entry, where, fail)
        fuses: list[Fuse] = []
        raw_fuse = data.get("fuse", [])
        if not isinstance(raw_fuse, list):
            raise fail("'fuse' must be a list of {width, height, options} objects", "/fuse")
        for i, entry in enumerate(raw_fuse):
            fuses.append(_fuse(entry, f"/fuse/{i}", fail))
        return cls(title, description, expose, fields, tuple(fuses), data)


def _text(data: Mapping[str, Any], key: str, where: str, fail: Any) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(f"{key!r} must be a string", f"{where}/{key}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str, fail: Any) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"{key!r} must be a number", f"{where}/{key}")
    return value


def _flag(data: Mapping[str, Any], key: str, where: str, fail: Any) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise fail(f"{key!r} must be true or false", f"{where}/{key}")
    return value


def _field(target: Target, entry: Any, where: str, fail: Any) -> FieldOverlay:
    if not isinstance(entry, dict):
        raise fail(f"the overlay of {target} must be an object", where)
    unknown = sorted(set(entry) - _FIELD_KEYS)
    if unknown:
        raise fail(
            f"unknown key(s) {unknown} for {target}; allowed: {sorted(_FIELD_KEYS)}",
            f"{where}/{unknown[0]}",
        )
    enum = entry.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise fail("'enum' must be a non-empty list", f"{where}/enum")
    low, high = _number(entry, "minimum", where, fail), _number(entry, "maximum", where, fail)
    if low is not None and high is not None and low > high:
        raise fail(f"minimum {low} is above maximum {high}", f"{where}/minimum")
    return FieldOverlay(
        target,
        name=_text(entry, "name", where, fail),
        title=_text(entry, "title", where, fail),
        description=_text(entry, "description", where, fail),
        required=_flag(entry, "required", where, fail),
        hide=_flag(entry, "hide", where, fail),
        minimum=low,
        maximum=high,
        enum=tuple(enum) if enum is not None else None,
        default=entry.get("default", NOT_GIVEN),
    )


def _fuse(entry: Any, where: str, fail: Any) -> Fuse:
    if not isinstance(entry, dict):
        raise fail("a fuse entry must be an object with width, height and options", where)
    unknown = sorted(set(entry) - _FUSE_KEYS)
    if unknown:
        raise fail(
            f"unknown key(s) {unknown} in a fuse entry; allowed: {sorted(_FUSE_KEYS)}",
            f"{where}/{unknown[0]}",
        )
    targets = []
    for part in ("width", "height"):
        text = entry.get(part)
        if not isinstance(text, str):
            raise fail(f"a fuse entry needs {part!r} as NODE.INPUT", f"{where}/{part}")
        try:
            targets.append(Target.parse(text))
        except ValueError as exc:
            raise fail(str(exc), f"{where}/{part}") from None
    options = entry.get("options")
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise fail(
            "'options' must be a non-empty list of 'WxH' strings such as '1024x576 (16:9)'",
            f"{where}/options",
        )
    default = entry.get("default")
    if default is not None and default not in options:
        raise fail(f"default {default!r} is not one of the options", f"{where}/default")
    return Fuse(
        targets[0],
        targets[1],
        tuple(options),
        name=_text(entry, "name", where, fail),
        title=_text(entry, "title", where, fail),
        description=_text(entry, "description", where, fail),
        required=_flag(entry, "required", where, fail),
        default=default,
    )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
