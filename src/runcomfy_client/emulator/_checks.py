"""The emulator's own check of a submit: plain jsonschema on the raw schema, its own messages.

Deliberately not the client's validator: a misreading shared by both would pass everywhere.
The check is JSON Schema Draft 2020-12 as published, with the catalog's one deviation read
the way the service reads it: ``"type": "float"`` is a number. Defaults are the server's
business and are never checked (a published default may break its own bounds). Media
formats are not asserted: like the service, the emulator takes any string for a media input
and fails the job when it cannot fetch it. No ``$ref`` is ever fetched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._failures import ModelUnusableError

__all__ = ["Problem", "SubmitChecker"]

Problem = dict[str, Any]
"""``{"loc": [key, index, ...], "msg": text, "kind": keyword}``: one item of a 422's detail."""

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "float": "a number",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _shown(value: Any, limit: int = 60) -> str:
    import json

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _types(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_TYPE_WORDS.get(str(n), str(n)) for n in names)


def _choices(values: Any) -> str:
    shown = [_shown(v, 30) for v in (values if isinstance(values, list) else [values])]
    more = f" ... ({len(shown)} in all)" if len(shown) > 12 else ""
    return ", ".join(shown[:12]) + more


# The error table: JSON Schema keyword -> what the emulator says, from the rule's value.
_SAYS: dict[str, Callable[[Any], str]] = {
    "type": lambda v: f"must be {_types(v)}",
    "enum": lambda v: f"must be one of {_choices(v)}",
    "const": lambda v: f"must be {_shown(v)}",
    "minimum": lambda v: f"must be at least {v}",
    "maximum": lambda v: f"must be at most {v}",
    "exclusiveMinimum": lambda v: f"must be greater than {v}",
    "exclusiveMaximum": lambda v: f"must be less than {v}",
    "multipleOf": lambda v: f"must be a multiple of {v}",
    "minLength": lambda v: f"must be at least {v} characters long",
    "maxLength": lambda v: f"must be at most {v} characters long",
    "pattern": lambda v: f"must match the pattern {_shown(v)}",
    "minItems": lambda v: f"must hold at least {v} items",
    "maxItems": lambda v: f"must hold at most {v} items",
    "uniqueItems": lambda v: "must not repeat an item",
    "minProperties": lambda v: f"must have at least {v} keys",
    "maxProperties": lambda v: f"must have at most {v} keys",
}


def _where(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "input"


class SubmitChecker:
    """One model's compiled check (compile once, check every submit)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        import referencing
        from jsonschema import Draft202012Validator, validators

        def is_number(checker: Any, instance: Any) -> bool:
            return isinstance(instance, (int, float)) and not isinstance(instance, bool)

        types = Draft202012Validator.TYPE_CHECKER.redefine("float", is_number)
        # jsonschema's extend() is untyped; the class it returns is a Draft 2020-12 validator.
        flavour = validators.extend(  # type: ignore[no-untyped-call]
            Draft202012Validator, type_checker=types
        )
        # An empty registry: a $ref outside the schema is an error, never a download.
        self._validator = flavour(dict(raw), registry=referencing.Registry())
        props = raw.get("properties")
        self._keys = frozenset(props) if isinstance(props, Mapping) else frozenset()

    def problems(self, body: Any) -> list[Problem]:
        """What is wrong with ``body``, by location; empty when the service would take it."""
        if not isinstance(body, dict):
            return [{"loc": [], "msg": "the input must be a JSON object", "kind": "type"}]
        found: list[Problem] = [
            {"loc": [k], "msg": f"{k}: unknown input key", "kind": "unknown"}
            for k in body
            if k not in self._keys
        ]
        known = {k: v for k, v in body.items() if k in self._keys}
        missing: set[str] = set()
        try:
            errors = list(self._validator.iter_errors(known))
        except RecursionError:
            return [{"loc": [], "msg": "the input nests too deeply to check", "kind": "invalid"}]
        except Exception as exc:  # noqa: BLE001 - jsonschema's errors for a broken schema vary
            raise ModelUnusableError(f"the model's schema cannot be checked: {exc}") from None
        for error in errors:
            loc = list(error.absolute_path)
            if error.validator == "required":
                for key in error.validator_value:
                    where = [*loc, key]
                    present = isinstance(error.instance, dict) and key in error.instance
                    if not present and _where(where) not in missing:
                        missing.add(_where(where))
                        text = f"{_where(where)}: is required"
                        found.append({"loc": where, "msg": text, "kind": "required"})
                continue
            says = _SAYS.get(str(error.validator))
            text = says(error.validator_value) if says else error.message
            found.append(
                {
                    "loc": loc,
                    "msg": f"{_where(loc)}: {text}, got {_shown(error.instance)}",
                    "kind": str(error.validator),
                }
            )
        return found
