"""bot.nlu.rasa_speedups: each patch gives Rasa's own answer, only faster."""

import jsonschema
import pytest
import rasa.shared.utils.common as common
from rasa.core.actions.action import RemoteAction
from rasa.engine.graph import GraphSchema, SchemaNode
from rasa.shared.core.events import Event

ORIGINAL_RESOLVE = Event.resolve_by_type
ORIGINAL_MINIMAL = GraphSchema.minimal_graph_schema

from bot.nlu import rasa_speedups  # noqa: E402

rasa_speedups.install()

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "order_no", "value": "202611200000000104", "timestamp": None}],
     "responses": [{"response": "utter_ask_picks"}]},
    {"events": [{"event": "bot", "text": "您好", "data": {}, "metadata": {}},
                {"event": "followup", "name": "action_listen"}, {"event": "active_loop", "name": None},
                {"event": "action", "name": "action_listen", "policy": None, "confidence": None}]},
    {"events": [{"event": "user", "text": "退货", "parse_data": {"intent": {"name": "request_return",
                                                                           "confidence": 0.9},
                                                                 "entities": []}}]},
    {"responses": [{"text": "好的"}]},
    {},
]
BAD = [
    [],  # not an object
    {"events": {"event": "slot"}},  # not a list
    {"events": [{"name": "order_no"}]},  # no "event"
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot", "name": 7, "value": 1}]},  # name must be a string
    {"events": [{"event": "bot", "timestamp": "yesterday"}]},
    {"events": [{"event": "user", "text": 5}]},
    {"responses": ["text"]},
]


def _rasa_says_valid(result) -> bool:
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
        return True
    except jsonschema.ValidationError:
        return False


@pytest.mark.parametrize("result", GOOD + BAD)
def test_the_answer_check_accepts_and_refuses_exactly_what_rasas_check_does(result):
    action = RemoteAction("action_x", None)
    if _rasa_says_valid(result):
        assert action._validate_action_result(result) is True
    else:
        with pytest.raises(jsonschema.ValidationError):
            action._validate_action_result(result)


def test_the_good_and_bad_examples_really_differ_under_rasas_own_check():
    assert all(_rasa_says_valid(r) for r in GOOD)
    assert not any(_rasa_says_valid(r) for r in BAD)


def test_event_classes_are_found_as_rasa_finds_them():
    names = {cls.type_name for cls in common.all_subclasses(Event)}
    assert len(names) > 20
    for name in names:
        assert Event.resolve_by_type(name) is ORIGINAL_RESOLVE(name)
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=Event) is Event
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")


def test_minimal_graph_schema_is_rasas_for_every_target():
    def node(needs):
        return SchemaNode(needs=needs, uses=object, constructor_name="create", fn="run", config={})

    schema = GraphSchema({"a": node({}), "b": node({"x": "a"}), "c": node({"x": "b"}), "d": node({})})
    for targets in (["c"], ["b"], ["d"], ["c", "d"], None):
        for _ in range(2):  # the second answer comes from the cache
            assert set(GraphSchema.minimal_graph_schema(schema, targets).nodes) == \
                set(ORIGINAL_MINIMAL(schema, targets).nodes)
