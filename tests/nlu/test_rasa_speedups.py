"""bot.nlu.rasa_speedups: each patch gives Rasa's own answer, only faster."""

from pathlib import Path

import jsonschema
import pytest
import rasa.shared.utils.common as common
from rasa.core.actions.action import RemoteAction
from rasa.engine.graph import GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.tensorflow.models import RasaModel

from bot.nlu import rasa_speedups

rasa_speedups.install()
# Rasa's own code, as the patches found it (another test module may have installed them first).
ORIGINAL_RESOLVE = rasa_speedups.ORIGINALS["Event.resolve_by_type"]
ORIGINAL_MINIMAL = rasa_speedups.ORIGINALS["GraphSchema.minimal_graph_schema"]
ORIGINAL_PREDICT = rasa_speedups.ORIGINALS["RasaModel._rasa_predict"]
ORIGINAL_PAST_STATES = rasa_speedups.ORIGINALS["DialogueStateTracker.past_states"]
ORIGINAL_APPLIED = rasa_speedups.ORIGINALS["DialogueStateTracker.applied_events"]
ORIGINAL_RUN = rasa_speedups.ORIGINALS["DaskGraphRunner.run"]
ORIGINAL_COMBINE = rasa_speedups.ORIGINALS["Message._combine_features"]
ORIGINAL_FAKE = rasa_speedups.ORIGINALS["rasa.utils.tensorflow.model_data_utils._create_fake_features"]
ORIGINAL_COUNTS = rasa_speedups.ORIGINALS["CountVectorsFeaturizer._create_features"]
ORIGINAL_IS_EMPTY = rasa_speedups.ORIGINALS["Domain.is_empty"]
ORIGINAL_ENTITIES = rasa_speedups.ORIGINALS["Domain._get_featurized_entities"]

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


def test_the_compiled_check_agrees_with_rasas_on_hundreds_of_generated_answers():
    """Events of every kind the schema names, with each property given values of every JSON type (and some
    left out or added), in answers of good and bad shapes: the compiled check never accepts what Rasa's own
    check refuses (what it refuses goes to Rasa's check anyway), and accepts what Rasa's accepts."""
    import random

    schema = RemoteAction.action_response_format_spec()
    alternatives = schema["properties"]["events"]["items"]["oneOf"]
    rng = random.Random(11)
    scalars = [None, True, False, 0, 7, -1, 1.5, 1e300, "", "x", "订单", [], ["a"], [1, None], {}, {"k": "v"},
               {"text": "hi", "buttons": [{"title": "a", "payload": "/b"}]}]

    def event() -> dict:
        alternative = rng.choice(alternatives)
        properties = dict(alternative.get("properties", {}))
        chosen = {"event": properties.pop("event")["const"]}
        for name in list(properties) + ["timestamp", "metadata", "extra"]:
            if rng.random() < 0.8:
                chosen[name] = rng.choice(scalars)
        return chosen

    def answer() -> object:
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(scalars)
        result: dict = {}
        if rng.random() < 0.9:
            result["events"] = [event() for _ in range(rng.randint(0, 4))] if rng.random() < 0.95 else "x"
        if rng.random() < 0.5:
            result["responses"] = rng.choice([[], [{"text": "好"}], ["text"], [{"response": "utter_x"}], {}])
        return result

    action = RemoteAction("action_x", None)
    rasas_check = jsonschema.validators.validator_for(schema)(schema)  # jsonschema.validate's, built once
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        result = answer()
        expected = rasas_check.is_valid(result)
        try:
            got = action._validate_action_result(result)
        except jsonschema.ValidationError:
            got = False
        assert got == expected, result
        verdicts[expected] += 1
    assert min(verdicts.values()) > 150  # both verdicts were really put to the test


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


def _numpy_diet_off(monkeypatch, direct_input_only: bool = False) -> None:
    """DIET through Rasa's model data and batch (the NumPy path's direct input off) and, unless
    `direct_input_only`, through the TensorFlow graph, which is the NumPy path's fallback."""
    from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier

    monkeypatch.setattr(DIETClassifier, "_predict", rasa_speedups.ORIGINALS["DIETClassifier._predict"])
    if not direct_input_only:
        monkeypatch.delattr(DIET, "_rasa_predict")


def test_diet_through_its_concrete_graph_ranks_intents_exactly_as_rasa_does(monkeypatch):
    """The trained model parses messages through the concrete TensorFlow function, with Rasa's results."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import load_agent

    _numpy_diet_off(monkeypatch)
    model = Path(__file__).resolve().parents[2] / "models" / "current.tar.gz"
    texts = ["你好", "衣服穿了一次就开线了，我要退货", "确认", "我的退款到哪了", "颜色跟图片差太多",
             "订单202611200000000104 发错货了", "？？？？", "有人让我提供验证码退款"]
    used: list = []
    patched = RasaModel._rasa_predict
    assert patched is not ORIGINAL_PREDICT

    def spy(self, batch_in):
        out = patched(self, batch_in)
        used.append("_bot_concrete_step" in self.__dict__)
        return out

    async def parse_all(agent) -> list:
        return [await agent.parse_message(text) for text in texts]

    async def scenario() -> tuple[list, list]:
        agent = await load_agent(str(model))
        monkeypatch.setattr(RasaModel, "_rasa_predict", spy)
        fast = await parse_all(agent)
        monkeypatch.setattr(RasaModel, "_rasa_predict", ORIGINAL_PREDICT)
        return fast, await parse_all(agent)

    fast, rasa = asyncio.run(scenario())
    assert used and all(used)  # every DIET call went through the concrete function
    for mine, theirs in zip(fast, rasa):
        assert mine["intent"]["name"] == theirs["intent"]["name"]
        assert [r["name"] for r in mine["intent_ranking"]] == [r["name"] for r in theirs["intent_ranking"]]
        for a, b in zip(mine["intent_ranking"], theirs["intent_ranking"]):
            assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-6)


def test_past_states_are_rasas_for_every_prefix_of_every_training_conversation():
    """Worked out once and handed out as copies: every prefix of every story and rule, for every argument
    set the policies use, equals Rasa's own states, also when asked again after a caller edited its copy."""
    import itertools
    from pathlib import Path

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.importers.importer import TrainingDataImporter

    root = Path(__file__).resolve().parents[2]
    importer = TrainingDataImporter.load_from_config(str(root / "config.yml"), str(root / "domain.yml"),
                                                     [str(root / "data")])
    domain: Domain = importer.get_domain()
    trackers = TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()
    assert len(trackers) > 50
    rule_only = {"slots": ["requested_slot"], "loops": ["after_sale_form"]}
    arguments = list(itertools.product((False, True), (False, True), (None, rule_only)))
    checked = 0
    for generated in trackers:
        events = list(generated.events)
        tracker = DialogueStateTracker(generated.sender_id, domain.slots)
        for event in events:  # every prefix: the same tracker object growing, as during a conversation
            tracker.update(event, domain)
            for omit, ignore, rules in arguments:
                expected = ORIGINAL_PAST_STATES(tracker, domain, omit, ignore, rules)
                first = tracker.past_states(domain, omit, ignore, rules)
                assert first == expected
                if first:
                    first[-1].clear()  # a caller editing its copy (Rasa pops keys of the last state)
                assert tracker.past_states(domain, omit, ignore, rules) == expected
                checked += 1
    assert checked > 2_000


def test_past_states_walk_again_when_earlier_events_stop_applying():
    """Reverted turns, rewound loop executions, restarts and loop names first seen late change which earlier
    events apply (checked against Rasa's `applied_events` too), and a prediction's
    featurization event edits an earlier user event: the states must still be Rasa's after every event of
    conversations with such events mixed in at random."""
    import random
    from pathlib import Path

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (ActionExecuted, ActionExecutionRejected, ActionReverted, ActiveLoop,
                                         DefinePrevUserUtteredFeaturization, Restarted, SessionStarted, SlotSet,
                                         UserUttered, UserUtteranceReverted)

    root = Path(__file__).resolve().parents[2]
    domain = Domain.load(str(root / "domain.yml"))
    rule_only = {"slots": ["requested_slot"], "loops": ["after_sale_form"]}
    rng = random.Random(7)

    def user(intent: str) -> UserUttered:
        return UserUttered(intent, {"name": intent, "confidence": 1.0})

    pieces = [
        lambda: [ActionExecuted("action_listen"), user("request_return")],
        lambda: [ActionExecuted("after_sale_form"), ActiveLoop("after_sale_form"),
                 SlotSet("requested_slot", "order_no")],
        lambda: [ActionExecuted("after_sale_form"), SlotSet("order_no", "202611200000000104")],
        lambda: [ActionExecuted("after_sale_form"), ActiveLoop(None), SlotSet("requested_slot", None)],
        lambda: [ActionExecutionRejected("after_sale_form"), ActionExecuted("utter_ask_continue")],
        # A loop name first seen late: it changes how that loop's earlier executions count.
        lambda: [ActionExecuted("other_form")],
        lambda: [ActionExecuted("other_form"), ActiveLoop("other_form")],
        lambda: [ActionExecuted("utter_greet", hide_rule_turn=True)],
        lambda: [UserUtteranceReverted()],
        lambda: [ActionReverted()],
        lambda: [Restarted()],
        lambda: [SessionStarted()],
        lambda: [ActionExecuted("action_listen"), user("greet")],
        # What a prediction logs after a user message: it edits that message's event object in place.
        lambda: [DefinePrevUserUtteredFeaturization(rng.random() < 0.5), ActionExecuted("utter_greet")],
    ]
    checked = 0
    for _ in range(40):
        tracker = DialogueStateTracker("walk", domain.slots)
        for _ in range(rng.randint(5, 25)):
            for event in rng.choice(pieces)():
                tracker.update(event, domain)
                assert tracker.applied_events() == ORIGINAL_APPLIED(tracker)
                for omit, ignore, rules in ((False, False, None), (True, True, rule_only), (True, False, None)):
                    assert tracker.past_states(domain, omit, ignore, rules) == \
                        ORIGINAL_PAST_STATES(tracker, domain, omit, ignore, rules)
                    checked += 1
    assert checked > 1_000


def test_a_tracker_copy_is_rasas_replayed_copy_for_every_prefix_of_every_training_conversation():
    """The fork equals the replay: its state, its events and what the policies see; it has no model id, as
    Rasa's copy; and it grows on its own."""
    from pathlib import Path

    from rasa.shared.core.events import ActionExecuted, SlotSet
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.trackers import EventVerbosity
    from rasa.shared.importers.importer import TrainingDataImporter

    original = rasa_speedups.ORIGINALS["DialogueStateTracker.copy"]
    root = Path(__file__).resolve().parents[2]
    importer = TrainingDataImporter.load_from_config(str(root / "config.yml"), str(root / "domain.yml"),
                                                     [str(root / "data")])
    domain = importer.get_domain()
    checked = 0
    for generated in TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate():
        tracker = DialogueStateTracker(generated.sender_id, domain.slots)
        tracker.model_id, tracker.assistant_id = "model-1", "after-sales-assistant"
        for event in generated.events:
            tracker.update(event, domain)
            tracker.past_states(domain)  # what the patches keep on the tracker goes along with the fork
            mine, rasas = tracker.copy(), original(tracker)
            assert mine.current_state(EventVerbosity.ALL) == rasas.current_state(EventVerbosity.ALL)
            assert {n: s.value for n, s in mine.slots.items()} == {n: s.value for n, s in rasas.slots.items()}
            assert (mine.active_loop, mine.latest_action, mine.followup_action, mine.is_paused(),
                    mine.latest_message, mine.latest_bot_utterance, mine.model_id, mine.assistant_id) == \
                (rasas.active_loop, rasas.latest_action, rasas.followup_action, rasas.is_paused(),
                 rasas.latest_message, rasas.latest_bot_utterance, rasas.model_id, rasas.assistant_id)
            assert mine.past_states(domain) == rasas.past_states(domain)
            checked += 1
        mine = tracker.copy()
        before = tracker.current_state(EventVerbosity.ALL)
        mine.update(SlotSet("order_no", "202611200000000999"), domain)
        mine.update(ActionExecuted("utter_greet"), domain)
        assert tracker.current_state(EventVerbosity.ALL) == before  # the copy grew on its own
    assert checked > 300


def _same_features(mine, theirs) -> None:
    assert (mine.type, mine.attribute, mine.origin) == (theirs.type, theirs.attribute, theirs.origin)
    assert type(mine.features) is type(theirs.features)
    assert mine.features.shape == theirs.features.shape and mine.features.dtype == theirs.features.dtype
    for part in ("row", "col", "data"):
        a, b = getattr(mine.features, part), getattr(theirs.features, part)
        assert a.dtype == b.dtype and a.tolist() == b.tolist()


def test_sparse_features_are_joined_exactly_as_rasa_joins_them(monkeypatch):
    """Every list of features DIET joins while the trained model parses real messages: joined in one step,
    the result has Rasa's entries in Rasa's order, dtype, shape and origin."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import load_agent

    _numpy_diet_off(monkeypatch)
    model = Path(__file__).resolve().parents[2] / "models" / "current.tar.gz"
    texts = ["你好", "衣服穿了一次就开线了，我要退货", "确认", "订单202611200000000104 发错货了，退两件",
             "颜色跟图片差太多 😡", "AAAA", "支付宝 13800138000"]
    patched = Message._combine_features
    assert patched is not ORIGINAL_COMBINE
    seen: list = []

    def spy(features, featurizers):
        seen.append((list(features), list(featurizers)))
        return patched(features, featurizers)

    async def parse_all() -> None:
        agent = await load_agent(str(model))
        monkeypatch.setattr(Message, "_combine_features", staticmethod(spy))
        for text in texts:
            await agent.parse_message(text)

    asyncio.run(parse_all())
    joined = [(f, names) for f, names in seen if len(f) > 1 and f[0].is_sparse()]
    assert len(joined) >= len(texts)  # sequence and sentence features of every message
    import scipy.sparse

    for features, names in joined:
        assert all(isinstance(f.features, scipy.sparse.coo_matrix) for f in features)  # the one-step join
        _same_features(patched(features, names), ORIGINAL_COMBINE(features, names))


def test_empty_stand_in_features_are_rasas(monkeypatch):
    """Every set of features DIET makes empty stand-ins from while the trained model parses real messages: the
    stand-ins equal Rasa's deep copies, and the message's own features are left as they were."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import load_agent
    from rasa.utils.tensorflow import model_data_utils

    model = Path(__file__).resolve().parents[2] / "models" / "current.tar.gz"
    # Through Rasa's model data, where the stand-ins are made (the NumPy path's direct input makes none; a
    # message it declines goes this way).
    _numpy_diet_off(monkeypatch, direct_input_only=True)
    patched = model_data_utils._create_fake_features
    assert patched is not ORIGINAL_FAKE
    seen: list = []

    def spy(all_features):
        seen.append(all_features)
        return patched(all_features)

    async def parse_all() -> None:
        agent = await load_agent(str(model))
        monkeypatch.setattr(model_data_utils, "_create_fake_features", spy)
        for text in ["你好", "订单202611200000000104 发错货了，退两件", "颜色跟图片差太多 😡", "AAAA"]:
            await agent.parse_message(text)

    asyncio.run(parse_all())
    assert len(seen) >= 4
    for all_features in seen:
        mine, rasas = patched(all_features), ORIGINAL_FAKE(all_features)
        assert len(mine) == len(rasas) > 0
        for a, b in zip(mine, rasas):
            assert (a.type, a.attribute, a.origin, a.is_sparse()) == (b.type, b.attribute, b.origin, b.is_sparse())
            assert (type(a.features), a.features.shape, a.features.dtype) == (
                type(b.features), b.features.shape, b.features.dtype)
            assert a.features.shape[0] == 0
        real = next(f for per_example in all_features for f in per_example if f is not None)
        assert all(f.features.shape[0] > 0 for f in real)  # the message's own features keep their rows


def test_other_features_are_left_to_rasa():
    """Blocks that are not COO, rows that do not match, and dense features: Rasa's own result or error."""
    import numpy as np
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features

    def sparse(matrix, origin):
        return Features(matrix, "sequence", "text", origin)

    coo = scipy.sparse.coo_matrix(np.array([[0, 1.0], [2.0, 0]]))
    csr = scipy.sparse.csr_matrix(np.array([[3.0, 0, 4.0], [0, 0, 5.0]]))
    mixed = Message._combine_features([sparse(coo, "a"), sparse(csr, "b")], ["a", "b"])
    rasa = ORIGINAL_COMBINE([sparse(coo, "a"), sparse(csr, "b")], ["a", "b"])
    assert type(mixed.features) is type(rasa.features)
    assert (mixed.features != rasa.features).nnz == 0
    three_rows = scipy.sparse.coo_matrix(np.ones((3, 2)))
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        Message._combine_features([sparse(coo, "a"), sparse(three_rows, "b")], ["a", "b"])
    ints = scipy.sparse.coo_matrix(np.array([[1, 0], [0, 7]], dtype=np.int64))
    _same_features(Message._combine_features([sparse(coo, "a"), sparse(ints, "b")], ["a", "b"]),
                   ORIGINAL_COMBINE([sparse(coo, "a"), sparse(ints, "b")], ["a", "b"]))
    dense = [Features(np.ones((2, 3)), "sentence", "text", "a"), Features(np.zeros((2, 1)), "sentence", "text", "b")]
    assert np.array_equal(Message._combine_features(dense, ["a", "b"]).features,
                          ORIGINAL_COMBINE(dense, ["a", "b"]).features)


def _trained_rule_policy() -> tuple:
    """The trained model's rule policy, its domain, and the training conversations (every story and rule)."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import load_agent
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.importers.importer import TrainingDataImporter

    root = Path(__file__).resolve().parents[2]
    agent = asyncio.run(load_agent(str(root / "models" / "current.tar.gz")))
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    policy = next(node._component for node in nodes if isinstance(node._component, RulePolicy))
    domain = agent.processor.domain
    importer = TrainingDataImporter.load_from_config(str(root / "config.yml"), str(root / "domain.yml"),
                                                     [str(root / "data")])
    return policy, domain, TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()


def test_rules_are_matched_as_rasa_matches_them_for_every_prefix_of_every_training_conversation():
    """The trained rule policy, given the states after every event of every story and rule: the rule keys that
    match the last states only, remembered by those states, are the keys Rasa's match over all states gives,
    for both of its lookups."""
    original = rasa_speedups.ORIGINALS["RulePolicy._get_possible_keys"]
    policy, domain, conversations = _trained_rule_policy()
    lookups = [lookup for lookup in policy.lookup.values() if isinstance(lookup, dict) and lookup]
    assert len(lookups) == 2
    checked = matched = 0
    for generated in conversations:
        tracker = DialogueStateTracker(generated.sender_id, domain.slots)
        for event in generated.events:
            tracker.update(event, domain)
            states = policy._prediction_states(tracker, domain)
            for lookup in lookups:
                keys = policy._get_possible_keys(lookup, states)
                assert keys == original(policy, lookup, states)
                keys.clear()  # a caller's own set: the remembered keys stay as they are
                assert policy._get_possible_keys(lookup, states) == original(policy, lookup, states)
                checked += 1
                matched += bool(original(policy, lookup, states))
    assert checked > 600 and matched > 100
    # Each rule's own states, and the same with the oldest state changed: a rule as long as the window is
    # decided by its oldest state, which the window must still reach.
    for lookup in lookups:
        for key in lookup:
            rule_states = policy._rule_key_to_state(key)
            other = [{"prev_action": {"action_name": "action_never_in_a_rule"}}] + rule_states[1:]
            # The same turns with another slot, loop or user part: remembered keys must not carry over.
            variants = [[{**state, part: {"changed": ("x",)}} for state in rule_states]
                        for part in ("slots", "active_loop", "user")]
            for states in (rule_states, other, [{}] + rule_states, *variants):
                assert policy._get_possible_keys(lookup, states) == original(policy, lookup, states)
                checked += 1
    # This bot's rules test no slot; a rule that does must not be answered from a window with another value.
    import json

    rule = [{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "affirm"},
             "slots": {"order_no": [1.0]}}]
    slot_lookup = {json.dumps(rule): "action_answer_shipping_fee"}
    for value in ((1.0,), (0.0,), (1.0,)):
        states = [{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "affirm"},
                   "slots": {"order_no": value}}]
        assert policy._get_possible_keys(slot_lookup, states) == original(policy, slot_lookup, states)
    unset = [{**states[0], "slots": {"order_no": (0.0,)}}]
    assert original(policy, slot_lookup, states) and not original(policy, slot_lookup, unset)  # it does test it


def test_the_rule_policy_predicts_as_rasa_does_without_its_text_look_for_every_prefix_of_every_conversation():
    """This bot's rules all end on an intent or after another action than action_listen, so the rule policy
    skips the look with the user's text in place of the intent. After every event of every story and rule,
    Rasa's own text look finds nothing there, and the prediction is Rasa's own."""
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.constants import ACTION_LISTEN_NAME

    original_find = rasa_speedups.ORIGINALS["RulePolicy._find_action_from_rules"]
    policy, domain, conversations = _trained_rule_policy()
    assert rasa_speedups.rules_skip_the_text_look(policy)
    skipped = predicted = 0
    for generated in conversations:
        tracker = DialogueStateTracker(generated.sender_id, domain.slots)
        for event in generated.events:
            tracker.update(event, domain)
            if tracker.latest_action_name == ACTION_LISTEN_NAME and tracker.latest_message:
                found, _, unhappy = original_find(policy, tracker, domain, True)
                assert found is None and unhappy is False
                assert policy._find_action_from_rules(tracker, domain, True) == (None, None, False)
                skipped += 1
            mine = policy.predict_action_probabilities(tracker, domain)
            with pytest.MonkeyPatch.context() as patched:
                patched.setattr(RulePolicy, "_find_action_from_rules", original_find)
                assert mine == policy.predict_action_probabilities(tracker, domain)
            predicted += 1
    assert skipped > 100 and predicted > 300


def test_a_rule_that_can_match_the_users_text_keeps_the_text_look(tmp_path):
    """A rule written with the user's words, or one ending after action_listen without an intent, could match
    the text look's state: then Rasa's text look runs (and finds the rule)."""
    import json

    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered

    domain = Domain.from_yaml("""
intents: [greet]
responses:
  utter_hi: [{text: "您好"}]
""")
    listen = {"action_name": "action_listen"}
    by_text = [{"prev_action": listen, "user": {"text": "在吗"}}]
    no_intent = [{"prev_action": listen}]
    by_intent = [{"prev_action": listen, "user": {"intent": "greet"}}]
    after_form = [{"prev_action": {"action_name": "a_form"}, "active_loop": {"name": "should_not_be_set"}}]
    tracker = DialogueStateTracker.from_events("t", [ActionExecuted("action_listen"),
                                                     UserUttered("在吗", {"name": "greet", "confidence": 1.0})])
    for rule, skips in ((by_intent, True), (after_form, True), (by_text, False), (no_intent, False)):
        lookup = {RULES: {json.dumps(rule): "utter_hi"}, RULES_FOR_LOOP_UNHAPPY_PATH: {}}
        policy = RulePolicy(RulePolicy.get_default_config(), LocalModelStorage(tmp_path), Resource("rules"),
                            ExecutionContext(GraphSchema({}), "test"), lookup=lookup)
        assert rasa_speedups.rules_skip_the_text_look(policy) is skips
        found = policy._find_action_from_rules(tracker, domain, True)[0]
        assert found == (None if skips else "utter_hi")
    policy.lookup[RULES] = {json.dumps(by_intent): "utter_hi"}  # changed in place: worked out again
    assert policy._find_action_from_rules(tracker, domain, True) == (None, None, False)


def test_graph_runs_give_dasks_results_for_parses_and_every_prediction_of_the_training_conversations():
    """The trained model's graph, run node after node: every parse and the prediction after every prefix of
    every story and rule equal what dask's run gives."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import load_agent
    from rasa.engine.exceptions import GraphRunError
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.core.channels.channel import UserMessage

    assert DaskGraphRunner.run is not ORIGINAL_RUN
    root = Path(__file__).resolve().parents[2]
    agent = asyncio.run(load_agent(str(root / "models" / "current.tar.gz")))
    processor = agent.processor
    runner = processor.graph_runner
    assert isinstance(runner, DaskGraphRunner)
    metadata = processor.model_metadata
    domain = processor.domain
    importer = TrainingDataImporter.load_from_config(str(root / "config.yml"), str(root / "domain.yml"),
                                                     [str(root / "data")])
    conversations = TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()
    empty = DialogueStateTracker("parse", domain.slots)
    for text in ["你好", "衣服穿了一次就开线了，我要退货", "确认", "？？？？", "订单202611200000000104 发错货了"]:
        inputs = lambda: {"__message__": [UserMessage(text)], "__tracker__": empty}  # noqa: E731
        mine = runner.run(inputs=inputs(), targets=[metadata.nlu_target])[metadata.nlu_target][0]
        dasks = ORIGINAL_RUN(runner, inputs=inputs(), targets=[metadata.nlu_target])[metadata.nlu_target][0]
        assert mine.as_dict(only_output_properties=True) == dasks.as_dict(only_output_properties=True)
    predictions = 0
    for generated in conversations:
        tracker = DialogueStateTracker(generated.sender_id, domain.slots)
        for event in generated.events:
            tracker.update(event, domain)
            mine = runner.run(inputs={"__tracker__": tracker}, targets=[metadata.core_target])
            assert mine == ORIGINAL_RUN(runner, inputs={"__tracker__": tracker}, targets=[metadata.core_target])
            predictions += 1
    assert predictions > 300
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__tracker__": metadata.core_target}, targets=[metadata.core_target])


def _same_matrix(mine, theirs) -> None:
    if theirs is None:
        assert mine is None
        return
    assert type(mine) is type(theirs)
    assert (mine.shape, mine.dtype, mine.has_canonical_format) == (theirs.shape, theirs.dtype,
                                                                   theirs.has_canonical_format)
    for part in ("row", "col", "data"):
        a, b = getattr(mine, part), getattr(theirs, part)
        assert a.dtype == b.dtype and a.tolist() == b.tolist()


def _same_counts(featurizer, attribute, all_tokens) -> None:
    mine = CountVectorsFeaturizer._create_features(featurizer, attribute, all_tokens)
    theirs = ORIGINAL_COUNTS(featurizer, attribute, all_tokens)
    assert len(mine) == len(theirs) == 2 and len(mine[0]) == len(theirs[0]) and len(mine[1]) == len(theirs[1])
    for mine_part, their_part in zip(mine, theirs):
        for a, b in zip(mine_part, their_part):
            _same_matrix(a, b)


def test_count_vectors_are_rasas_for_every_message_the_trained_featurizers_see(monkeypatch):
    """Both count-vector featurizers of the trained model (words, and character n-grams) while it parses real
    messages: the features straight from the vocabulary are scikit-learn's `transform`, sorted and made COO,
    entry for entry, with the same shapes and dtypes."""
    import asyncio
    from pathlib import Path

    from rasa.core.agent import load_agent

    _numpy_diet_off(monkeypatch)
    model = Path(__file__).resolve().parents[2] / "models" / "current.tar.gz"
    texts = ["你好", "衣服穿了一次就开线了，我要退货", "确认", "订单202611200000000104 发错货了，退两件 2 2 2",
             "颜色跟图片差太多 😡😡", "AAAA aaaa AaAa", "支付宝 13800138000", "？？？？", "<b>退款</b>' OR 1=1 --",
             "退" * 300, "size XL 太大了 XL xl"]
    patched = CountVectorsFeaturizer._create_features
    assert patched is not ORIGINAL_COUNTS
    seen: list = []

    def spy(self, attribute, all_tokens):
        seen.append((self, attribute, [list(tokens) for tokens in all_tokens]))
        return patched(self, attribute, all_tokens)

    async def parse_all() -> None:
        agent = await load_agent(str(model))
        monkeypatch.setattr(CountVectorsFeaturizer, "_create_features", spy)
        for text in texts:
            await agent.parse_message(text)

    asyncio.run(parse_all())
    monkeypatch.setattr(CountVectorsFeaturizer, "_create_features", patched)
    analyzers = {featurizer.vectorizers["text"].analyzer for featurizer, attribute, _ in seen if attribute == "text"}
    assert analyzers == {"word", "char_wb"}
    counted = 0
    for featurizer, attribute, all_tokens in seen:
        _same_counts(featurizer, attribute, all_tokens)
        counted += sum(bool(tokens) for tokens in all_tokens)
    assert counted >= 2 * len(texts)


def test_count_vectors_are_rasas_for_binary_counts_ngrams_and_unfitted_vectorizers():
    """Settings the bot's config does not use: binary counts and word n-grams give scikit-learn's result, and a
    vectorizer that was never fitted fails with scikit-learn's own error."""
    from types import SimpleNamespace

    from sklearn.exceptions import NotFittedError
    from sklearn.feature_extraction.text import CountVectorizer

    corpus = ["退货 退款 运费", "退货 退货 换货", "运费 险 退款 退款"]
    tokens = [["退货", "退货", "运费", "没见过"], [], ["险"]]
    for vectorizer in (CountVectorizer(token_pattern=r"(?u)\b\w+\b", binary=True),
                       CountVectorizer(token_pattern=r"(?u)\b\w+\b", ngram_range=(1, 2)),
                       CountVectorizer(analyzer="char_wb", ngram_range=(1, 3))):
        vectorizer.fit(corpus)
        _same_counts(SimpleNamespace(vectorizers={"text": vectorizer}), "text", tokens)
        _same_counts(SimpleNamespace(vectorizers={"intent": vectorizer}), "intent", tokens)
    for self in (SimpleNamespace(vectorizers={}), SimpleNamespace(vectorizers={"text": None})):
        assert CountVectorsFeaturizer._create_features(self, "text", tokens) == ([None], [None])
    unfitted = SimpleNamespace(vectorizers={"text": CountVectorizer()})
    with pytest.raises(NotFittedError):
        CountVectorsFeaturizer._create_features(unfitted, "text", tokens)
    with pytest.raises(NotFittedError):
        ORIGINAL_COUNTS(unfitted, "text", tokens)


def test_the_empty_domain_check_is_rasas():
    from rasa.shared.core.domain import Domain

    root = Path(__file__).resolve().parents[2]
    for domain in (Domain.empty(), Domain.load(str(root / "domain.yml")), Domain.from_dict({"intents": ["greet"]}),
                   Domain.from_dict({})):
        assert domain.is_empty() == ORIGINAL_IS_EMPTY(domain)
    assert Domain.empty().is_empty() and not Domain.load(str(root / "domain.yml")).is_empty()


def test_plain_copies_are_copy_copy_for_every_slot_and_leave_other_objects_to_it():
    """Every slot of the domain and every kind of slot: `_plain_copy` gives what `copy.copy` gives (the same class
    and attributes, a new object whose attributes can change on their own); objects that copy their own way
    (a `__copy__`, `__slots__`, `__reduce__`, a dict subclass) get `copy.copy`'s result. A new tracker's slots
    are the domain's, copied."""
    import copy

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.slots import (AnySlot, BooleanSlot, CategoricalSlot, FloatSlot, ListSlot, TextSlot)

    domain = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
    mapping = [{"type": "from_text"}]
    slots = list(domain.slots) + [
        AnySlot("a", mapping), BooleanSlot("b", mapping, initial_value=True), CategoricalSlot("c", mapping, ["x"]),
        FloatSlot("f", mapping, max_value=3.0), ListSlot("l", mapping, initial_value=[1]), TextSlot("t", mapping)]
    assert len(domain.slots) > 10
    for slot in slots:
        mine, theirs = rasa_speedups._plain_copy(slot), copy.copy(slot)
        assert type(mine) is type(theirs) and mine is not slot
        assert mine.__dict__ == theirs.__dict__ and all(mine.__dict__[k] is v for k, v in theirs.__dict__.items())
        mine.value = "changed"
        assert slot.value != "changed"
        assert rasa_speedups._PLAIN_CLASSES[type(slot)] is True  # copied directly, not left to copy.copy

    class OwnCopy:
        def __init__(self):
            self.n = 1

        def __copy__(self):
            other = OwnCopy()
            other.n = 2
            return other

    class WithSlots:
        __slots__ = ("n",)

        def __init__(self):
            self.n = 3

    class Reduced:
        def __init__(self, n=4):
            self.n = n

        def __reduce__(self):
            return (Reduced, (5,))

    class Mapping(dict):
        pass

    assert rasa_speedups._plain_copy(OwnCopy()).n == 2
    assert rasa_speedups._plain_copy(WithSlots()).n == 3 and rasa_speedups._PLAIN_CLASSES[WithSlots] is False
    assert rasa_speedups._plain_copy(Reduced()).n == 5
    assert rasa_speedups._plain_copy(Mapping(k=1)) == {"k": 1}
    assert rasa_speedups._plain_copy([1, 2]) == [1, 2] and rasa_speedups._plain_copy(int) is int
    tracker = DialogueStateTracker("s", domain.slots)
    assert [type(s) for s in tracker.slots.values()] == [type(s) for s in domain.slots]
    assert all(tracker.slots[s.name] is not s and tracker.slots[s.name].__dict__ == s.__dict__ for s in domain.slots)


def test_the_processors_log_copies_are_skipped_only_when_debug_calls_are_dropped():
    """rasa.core.processor deep-copies only for debug log lines: the copy is skipped while the structlog wrapper
    drops debug calls, and made (a real deep copy) at DEBUG level."""
    import logging

    import rasa.core.processor as processor
    import structlog
    from rasa.shared.core.events import SlotSet

    assert processor.copy is rasa_speedups._LogOnlyCopies
    events = [SlotSet("order_no", {"nested": ["x"]})]
    before = structlog.get_config()["wrapper_class"]
    try:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        assert processor.copy.deepcopy(events) is events
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        copied = processor.copy.deepcopy(events)
        assert copied == events and copied is not events and copied[0].value is not events[0].value
    finally:
        structlog.configure(wrapper_class=before)


def test_the_entities_of_a_state_are_rasas_for_every_intent_with_and_without_entities():
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered

    domain = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
    some = domain.entities[:3]
    assert domain._get_featurized_entities is not ORIGINAL_ENTITIES and len(domain.intents) > 10 and some
    lists = [[], [{"entity": name, "value": "x"} for name in some],
             [{"entity": some[0], "value": "x", "role": "from"}, {"entity": some[-1], "value": "y", "group": "1"}],
             [{"value": "no name"}]]
    checked = 0
    for intent in domain.intents + ["not_in_the_domain", None]:
        for entities in lists:
            message = UserUttered("text", {"name": intent, "confidence": 1.0}, entities)
            mine, rasas = domain._get_featurized_entities(message), ORIGINAL_ENTITIES(domain, message)
            assert type(mine) is type(rasas) and mine == rasas
            checked += bool(rasas)
    assert checked > 10  # some intents do want the entities given


def _processor_counting_graph_runs(monkeypatch) -> tuple:
    """The trained model's message processor, and a list that gets an item for each run of its graph."""
    import asyncio

    from rasa.core.agent import load_agent

    agent = asyncio.run(load_agent(str(Path(__file__).resolve().parents[2] / "models" / "current.tar.gz")))
    graph_runs: list = []
    real_run = type(agent.processor.graph_runner).run
    monkeypatch.setattr(type(agent.processor.graph_runner), "run",
                        lambda self, *a, **k: graph_runs.append(1) or real_run(self, *a, **k))
    return agent.processor, graph_runs


def test_a_payload_is_parsed_as_rasa_parses_it_without_running_the_nlu_components(monkeypatch):
    """Buttons send payloads: their parse is Rasa's, and the graph (jieba, spaCy rules, DIET …) does not run for
    a payload of a known intent. Anything else, malformed payloads included, still goes through the graph."""
    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor

    original = rasa_speedups.ORIGINALS["MessageProcessor._parse_message_with_graph"]
    assert MessageProcessor._parse_message_with_graph is not original
    processor, graph_runs = _processor_counting_graph_runs(monkeypatch)
    payloads = ["/deny", "/affirm", "  /affirm  ", "/affirm@0.7", '/inform{"order_no":"202611200000000104"}',
                '/inform{"picks":"4:1"}', '/inform{"picks":"all"}', '/inform{"evidence_id": "12"}',
                '/inform{"resolution":"return_refund"}', '/inform{"order_no":"1"} and more',
                '/inform{"no_such_entity":"x"}', "/inform{not json"]  # Rasa's too: /inform, the rest dropped
    others = ["你好", "衣服穿了一次就开线了，我要退货", "/no_such_intent", "/", "/ 退货", "/{}",
              "确认 /deny", "？？？？"]
    for text in payloads + others:
        for only_output in (True, False):
            tracker = DialogueStateTracker("parse", processor.domain.slots)
            graph_runs.clear()
            mine = processor._parse_message_with_graph(UserMessage(text, message_id="m"), tracker, only_output)
            mine_ran = len(graph_runs)
            theirs = original(processor, UserMessage(text, message_id="m"), tracker, only_output)
            assert mine == theirs, text
            assert mine_ran == (0 if text in payloads else 1), text
    unpacked = processor._parse_message_with_graph(UserMessage('/inform{"picks":"4:1"}'), None)
    assert unpacked["intent"] == {"name": "inform", "confidence": 1.0}
    assert unpacked["entities"][0]["entity"] == "picks" and unpacked["entities"][0]["value"] == "4:1"


def _training_texts() -> list:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(Path(__file__).resolve().parents[2] / "data" / "nlu"))
    return [m.get("text") for m in data.training_examples]


def test_a_repeated_text_gets_the_graphs_result_without_running_it_again(monkeypatch):
    """The parse cache: every short training text parsed twice (other message ids and metadata) gives Rasa's
    result both times, and the graph ran only the first time. Texts with digits, long texts, payloads and
    parses that ask for more than the output properties are never kept; a changed result does not change what
    is kept; the least recently used text goes first; size 0 keeps nothing."""
    import re

    from rasa.core.channels.channel import UserMessage

    original = rasa_speedups.ORIGINALS["MessageProcessor._parse_message_with_graph"]
    processor, graph_runs = _processor_counting_graph_runs(monkeypatch)

    def parse(text: str, only_output: bool = True, n: int = 0) -> tuple:
        graph_runs.clear()
        message = UserMessage(text, message_id=f"m{n}", metadata={"n": n}, sender_id=f"buyer-{n}")
        return processor._parse_message_with_graph(message, None, only_output), len(graph_runs)

    kept = [t for t in dict.fromkeys(_training_texts()) if len(t) <= 32 and not re.search(r"\d", t)]
    assert len(kept) > 500
    before = rasa_speedups.parse_cache_stats()
    for text in kept:
        theirs = original(processor, UserMessage(text), None, True)
        assert parse(text, n=1) == (theirs, 1), text
        assert parse(text, n=2) == (theirs, 0), text
    after = rasa_speedups.parse_cache_stats()
    assert after["hits"] - before["hits"] == len(kept) and after["misses"] - before["misses"] == len(kept)

    changed, _ = parse("你好", n=3)
    changed["intent"]["name"] = "deny"
    changed["entities"].append({"entity": "x"})
    assert parse("你好", n=4) == (original(processor, UserMessage("你好"), None, True), 0)

    never = ["我的订单号是202611200000000104", "手机１３８００００００００", "衣服" * 17, "/deny", "/affirm"]
    for text in never:
        for n in (5, 6):
            assert parse(text, n=n)[1] == (0 if text.startswith("/") else 1), text
    assert parse("谢谢", only_output=False)[1] == 1 and parse("谢谢", only_output=False)[1] == 1
    skipped = rasa_speedups.parse_cache_stats()["skipped"] - after["skipped"]
    assert skipped == 2 * len(never) + 2

    monkeypatch.setattr(rasa_speedups, "PARSE_CACHE_SIZE", 0)  # BOT_PARSE_CACHE_SIZE=0: no cache
    assert parse("你好", n=7)[1] == 1 and parse("你好", n=8)[1] == 1

    small = rasa_speedups.ParseCache(size=2)
    small.put("a", {"n": 1})
    small.put("b", {"n": 2})
    assert small.get("a") == {"n": 1}  # "a" is now the more recent
    small.put("c", {"n": 3})
    assert (small.get("b"), small.get("a"), small.get("c"), len(small)) == (None, {"n": 1}, {"n": 3}, 2)


def test_a_trackers_loop_state_is_what_dataclasses_asdict_makes_of_it():
    """The active form's state in `current_state` (sent with every custom-action call): the same dict as
    `dataclasses.asdict`, with containers of its own; values that are not plain trees (a NumPy number, a dict
    subclass, a named tuple, a set, a nested dataclass) get `dataclasses.asdict`'s own copy."""
    import collections
    import dataclasses

    import numpy as np
    import rasa.shared.core.trackers as trackers
    from rasa.shared.core.events import ActiveLoop as ActiveLoopEvent, UserUttered
    from rasa.shared.core.trackers import TrackerActiveLoop as ActiveLoop

    assert isinstance(trackers.dataclasses, rasa_speedups._TreeAsdictModule)
    assert trackers.dataclasses.dataclass is dataclasses.dataclass  # every other name is the module's own
    parse = {"text": "质量问题，我要退货", "intent": {"name": "reason_quality", "confidence": 0.9958121180534363},
             "entities": [{"entity": "resolution", "value": "return_refund", "start": 7, "end": 9,
                           "confidence": 1.0, "extractor": "ShopEntityExtractor"}],
             "intent_ranking": [{"name": "reason_quality", "confidence": 0.99}, {"name": "deny", "confidence": 1e-7}],
             "message_id": "abc", "metadata": {"buyer_token": "t", "shop": None, "flags": (True, False, 3)},
             "response_selector": {}}
    Pair = collections.namedtuple("Pair", "a b")

    @dataclasses.dataclass
    class Inner:
        n: int

    odd = [{"x": np.float32(0.5)}, collections.OrderedDict(k=[1]), {"p": Pair(1, [2])}, {"s": {1, 2}},
           {"inner": Inner(3)}]
    for trigger in [parse, None, {}, *odd]:
        loop = ActiveLoop("after_sale_form", True, False, trigger)
        mine, theirs = rasa_speedups._tree_asdict(loop), dataclasses.asdict(loop)
        assert mine == theirs and list(mine) == list(theirs)
        assert type(mine["trigger_message"]) is type(theirs["trigger_message"])
        if isinstance(trigger, dict) and trigger:
            assert mine["trigger_message"] is not trigger
    mine = rasa_speedups._tree_asdict(ActiveLoop("f", True, False, parse))
    mine["trigger_message"]["entities"][0]["value"] = "changed"
    mine["trigger_message"]["metadata"]["buyer_token"] = "changed"
    assert parse["entities"][0]["value"] == "return_refund" and parse["metadata"]["buyer_token"] == "t"
    assert rasa_speedups._tree_asdict(Inner(1), dict_factory=collections.OrderedDict) == collections.OrderedDict(n=1)

    tracker = DialogueStateTracker("s", [])
    tracker.update(UserUttered("质量问题，我要退货", parse["intent"], parse["entities"], parse_data=parse))
    tracker.update(ActiveLoopEvent("after_sale_form"))
    state = tracker.current_state()
    assert state["active_loop"] == dataclasses.asdict(tracker.active_loop)
    assert state["active_loop"]["trigger_message"]["intent"]["name"] == "reason_quality"
    assert DialogueStateTracker("t", []).current_state()["active_loop"] == {}


def test_a_response_variation_is_the_one_rasa_picks_from_the_same_random_state():
    """For every response of the domain, ones with several variations, conditions on slots and channels, and
    names that are not responses: from the same seed the pick is the same variation (the same dict), and NumPy's
    generator is left in the same state."""
    import numpy as np
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain

    original = rasa_speedups.ORIGINALS["TemplatedNaturalLanguageGenerator._random_response_for"]
    responses = dict(Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml")).responses)
    responses["utter_many"] = [{"text": f"variation {n}"} for n in range(7)]
    responses["utter_conditional"] = [
        {"text": "vip", "condition": [{"type": "slot", "name": "vip", "value": True}]},
        {"text": "vip on socket.io", "channel": "socketio",
         "condition": [{"type": "slot", "name": "vip", "value": True}]},
        {"text": "anyone"}, {"text": "anyone, again"}]
    nlg = TemplatedNaturalLanguageGenerator(responses)
    assert len(responses) > 50
    picked_differently = set()
    for seed in range(12):
        for name in [*responses, "utter_not_there"]:
            for channel, slots in (("rest", {}), ("socketio", {"vip": True}), ("rest", {"vip": True})):
                np.random.seed(seed)
                theirs = original(nlg, name, channel, slots)
                state = np.random.get_state()[1].copy()
                np.random.seed(seed)
                mine = nlg._random_response_for(name, channel, slots)
                assert mine is theirs
                assert (np.random.get_state()[1] == state).all()
                if name == "utter_many":
                    picked_differently.add(mine["text"])
    assert len(picked_differently) > 3  # the seeds pick different variations, as Rasa's pick does
