"""Rasa 3.6 spends much of a message's CPU on work it could do once; these patches do it once, with the
same results. Installed in every Rasa server we start (dev: bot.nlu.serve, production: bot.ops.rasa_guard).
Imports only rasa and the standard library. Measured with py-spy under load (bench/LOAD_RESULTS.md):

- checking every action-server answer with `jsonschema.validate` built a validator per call and tried all
  23 event kinds of the schema's `oneOf` on every event;
- turning stored events back into objects searched all subclasses of `Event` for every single event;
- every graph run (NLU, each policy prediction) walked the graph schema to find the nodes it needs.
"""

from __future__ import annotations

from typing import Any, Dict, Text

_installed = False


def install() -> None:
    """Apply every patch once per process."""
    global _installed
    if _installed:
        return
    _install_response_validator()
    _install_event_type_cache()
    _install_minimal_schema_cache()
    _installed = True


def _install_response_validator() -> None:
    """The answer is checked against the same schema, with validators built once, and each event against
    the one `oneOf` alternative its "event" names (the alternatives' names are distinct, so exactly one
    alternative can be valid, as `oneOf` demands); an unknown event name fails as before."""
    import copy

    import jsonschema
    from rasa.core.actions.action import RemoteAction

    state: Dict[str, Any] = {}

    def build() -> Dict[str, Any]:
        schema = RemoteAction.action_response_format_spec()
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        event_schema = schema["properties"]["events"]["items"]
        alternatives = event_schema.get("oneOf", [])
        names = [alt.get("properties", {}).get("event", {}).get("const") for alt in alternatives]
        if None in names or len(set(names)) != len(names):  # not the shape we know: the full check
            return {"whole": cls(schema)}
        base = {k: v for k, v in event_schema.items() if k != "oneOf"}
        outer = copy.deepcopy(schema)
        outer["properties"]["events"]["items"] = base
        return {"outer": cls(outer),
                "by_name": {name: cls({"allOf": [base, alt]}) for name, alt in zip(names, alternatives)},
                "whole": cls(schema)}

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        validators = state.get("v") or state.setdefault("v", build())
        try:
            if "outer" not in validators:
                validators["whole"].validate(result)
                return True
            validators["outer"].validate(result)
            for event in result.get("events") or []:
                validator = validators["by_name"].get(event.get("event"))
                if validator is None:
                    validators["whole"].validate(result)  # raises jsonschema's own error for this event
                    continue
                validator.validate(event)
            return True
        except jsonschema.ValidationError as e:
            e.message += (". Failed to validate Action server response from API, make sure your response from "
                          "the Action endpoint is valid.")
            raise e

    RemoteAction._validate_action_result = _validate_action_result


def _install_event_type_cache() -> None:
    """`Event.resolve_by_type` with a name → class table, refreshed when a name is not in it yet (a class
    defined later); the first class found for a name wins, as in Rasa's search."""
    import rasa.shared.utils.common as common
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    table: Dict[Text, Any] = {}

    def resolve_by_type(type_name: Text, default: Any = None) -> Any:
        cls = table.get(type_name)
        if cls is None:
            for candidate in common.all_subclasses(Event):
                table.setdefault(candidate.type_name, candidate)
            cls = table.get(type_name)
        return cls if cls is not None else original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)


def _install_minimal_schema_cache() -> None:
    """A loaded model's graph schema does not change, so the part of it that some targets need is worked out
    once per (schema, targets)."""
    from rasa.engine.graph import GraphSchema

    original = GraphSchema.minimal_graph_schema
    cache: Dict[Any, Any] = {}

    def minimal_graph_schema(self: GraphSchema, targets: Any = None) -> GraphSchema:
        key = (id(self), tuple(targets) if targets else None)
        hit = cache.get(key)
        if hit is None or hit[0] is not self:
            hit = cache[key] = (self, original(self, targets))
        return hit[1]

    GraphSchema.minimal_graph_schema = minimal_graph_schema
