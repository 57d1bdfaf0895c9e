"""Rasa 3.6 spends much of a message's CPU on work it could do once; these patches do it once, with the
same results. Installed in every Rasa server we start (dev: bot.nlu.serve, production: bot.ops.rasa_guard).
Imports only rasa, its own dependencies (numpy, scipy, scikit-learn, TensorFlow), fastjsonschema, the standard
library and bot.nlu.diet_numpy (which imports no more). Measured with py-spy under load (bench/LOAD_RESULTS.md):

- checking every action-server answer with `jsonschema.validate` built a validator per call, tried all
  23 event kinds of the schema's `oneOf` on every event, and walked the schema for each;
- turning stored events back into objects searched all subclasses of `Event` for every single event;
- every graph run (NLU, each policy prediction) walked the graph schema to find the nodes it needs;
- DIET's TensorFlow graph was looked up again, and its inputs matched against its signature, on every call;
- DIET's graph ran some 340 TensorFlow ops per message, each with its dispatch cost, for little arithmetic;
- every prediction replayed the whole conversation into states once per policy, twice for the rule policy,
  and worked out which events apply (quadratic in a form) a dozen times per message;
- the rule policy matched every rule against every state of the conversation, though rules are short;
- a form copied the tracker by replaying every event into a new one;
- DIET's input joined each message's sparse features pairwise with `scipy.sparse.hstack`, which converts
  and checks every block again, and its empty stand-in features were deep copies of the real ones;
- every graph run built a dask graph and dask's scheduling state to call a handful of nodes in order;
- the count-vector featurizers went through scikit-learn's `transform`, which builds its analyzer again and
  checks a CSR matrix that Rasa then sorts and converts to COO, for every message;
- every parse built an empty domain to check that the bot's domain is not empty;
- every new tracker (a form's temporary one, each copy) copied each of the domain's slots through `copy.copy`'s
  generic reduce protocol;
- the message processor deep-copied the events of every action it ran, for debug log lines that are dropped
  unless the log level is DEBUG;
- every custom-action call deep-copied, value by value, the parse of the message that started the active form;
- every answer's variation was picked through a NumPy object array built from the list of variations;
- every state of every prediction built the set of entities its intent wants, for messages without entities;
- a button's payload went through every NLU component before Rasa replaced their result with the payload's;
- the same short texts (你好, 确认, 谢谢, 好的 …) went through every NLU component again for every buyer.
"""

from __future__ import annotations

import copy
import copyreg
import itertools
import re
from collections import Counter, OrderedDict
from typing import Any, Dict, Optional, Text

_installed = False
# What each patch replaced, by "Class.attribute": the tests compare every patch with Rasa's own code, whatever
# imported this module first.
ORIGINALS: Dict[str, Any] = {}


def _patch(owner: Any, name: str, replacement: Any) -> None:
    ORIGINALS.setdefault(f"{owner.__name__}.{name}", getattr(owner, name))
    setattr(owner, name, replacement)


def install() -> None:
    """Apply every patch once per process."""
    global _installed
    if _installed:
        return
    _install_response_validator()
    _install_event_type_cache()
    _install_minimal_schema_cache()
    _install_concrete_prediction()
    _install_numpy_diet()
    _install_applied_events_reuse()
    _install_rule_matching_window()
    _install_intent_only_rule_lookup()
    _install_past_states_reuse()
    _install_tracker_copy()
    _install_feature_joining()
    _install_shallow_fake_features()
    _install_in_order_graph_runner()
    _install_direct_count_vectors()
    _install_empty_domain_check()
    _install_plain_slot_copies()
    _install_log_only_copies()
    _install_tree_copied_loop_state()
    _install_direct_response_choice()
    _install_entity_free_states()
    _install_payload_parse()
    _install_parse_cache()
    _installed = True


def _install_response_validator() -> None:
    """The answer is checked against the same schema, with validators built once, and each event against
    the one `oneOf` alternative its "event" names (the alternatives' names are distinct, so exactly one
    alternative can be valid, as `oneOf` demands); an unknown event name fails as before. The checks are
    compiled to Python by fastjsonschema (14 times faster per event than jsonschema walking the schema);
    an answer they refuse is checked again by jsonschema, so a bad answer fails with Rasa's own error."""
    import copy

    import fastjsonschema
    import jsonschema
    from rasa.core.actions.action import RemoteAction

    state: Dict[str, Any] = {}

    def build() -> Dict[str, Any]:
        schema = RemoteAction.action_response_format_spec()
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        whole = cls(schema)
        event_schema = schema["properties"]["events"]["items"]
        alternatives = event_schema.get("oneOf", [])
        names = [alt.get("properties", {}).get("event", {}).get("const") for alt in alternatives]
        if None in names or len(set(names)) != len(names):  # not the shape we know: the full check
            return {"whole": whole}
        base = {k: v for k, v in event_schema.items() if k != "oneOf"}
        outer = copy.deepcopy(schema)
        outer["properties"]["events"]["items"] = base
        return {"outer": fastjsonschema.compile(outer),
                "by_name": {name: fastjsonschema.compile({"allOf": [base, alt]})
                            for name, alt in zip(names, alternatives)},
                "whole": whole}

    def passes(validators: Dict[str, Any], result: Any) -> bool:
        if "outer" not in validators:
            return False
        try:
            validators["outer"](result)
            for event in result.get("events") or []:
                validator = validators["by_name"].get(event.get("event"))
                if validator is None:
                    return False
                validator(event)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        validators = state.get("v") or state.setdefault("v", build())
        if passes(validators, result):
            return True
        try:
            validators["whole"].validate(result)  # Rasa's own check: its verdict and its error
            return True
        except jsonschema.ValidationError as e:
            e.message += (". Failed to validate Action server response from API, make sure your response from "
                          "the Action endpoint is valid.")
            raise e

    _patch(RemoteAction, "_validate_action_result", _validate_action_result)


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

    _patch(Event, "resolve_by_type", staticmethod(resolve_by_type))


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

    _patch(GraphSchema, "minimal_graph_schema", minimal_graph_schema)


def _install_concrete_prediction() -> None:
    """DIET's prediction calls its traced TensorFlow graph (the concrete function of `tf.function` with the
    model's fixed input signature) directly. Through the `tf.function` wrapper every call first matched
    its inputs against the signature and looked the graph up again (a parse: about 7.0 ms with it, 6.1 ms
    without, in a micro-benchmark).
    The first call, which traces the graph, and eager mode are Rasa's own code."""
    import numpy as np
    import tensorflow as tf
    from keras.utils import tf_utils
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.utils.tensorflow.models import RasaModel

    original = RasaModel._rasa_predict

    def _rasa_predict(self: RasaModel, batch_in: Any) -> Dict[Text, Any]:
        step = self._tf_predict_step
        if step is None or self._run_eagerly or not self.prepared_for_prediction:
            return original(self, batch_in)
        concrete = self.__dict__.get("_bot_concrete_step")
        if concrete is None or concrete[0] is not step:
            concrete = self.__dict__["_bot_concrete_step"] = (step, step.get_concrete_function())
        if self.__dict__.get("_training") is not False:  # Keras's attribute tracking made each set costly
            self._training = False
        # A NumPy array becomes the eager tensor `tf.convert_to_tensor` makes of it, without its dispatch layers.
        device = context.context().device_name
        inputs = [ops.EagerTensor(value, device, None) if isinstance(value, np.ndarray) else tf.convert_to_tensor(value)
                  for value in batch_in]
        # The graph's flat call: calling the concrete function matched the inputs against its structured
        # signature once more (a fifth of DIET's CPU per message); the inputs are that signature's flat list.
        function = concrete[1]
        outputs = tf_utils.sync_to_numpy_or_python_type(function._call_flat(inputs, function.captured_inputs))
        if DIAGNOSTIC_DATA in outputs:
            outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
        return outputs

    _patch(RasaModel, "_rasa_predict", _rasa_predict)


def _install_numpy_diet() -> None:
    """DIET's intent prediction runs in NumPy (bot.nlu.diet_numpy), with the graph's outputs (intent scores and
    diagnostic data) to float32 rounding. TensorFlow dispatched each of the graph's ~340 ops separately, some
    15 µs each on a slow host, for a few small matrix products: there a prediction took a median of 5.1 ms of CPU
    in TensorFlow and 1.7 ms in NumPy, and a new complaint's parse 10.6 ms against 6.4 (bench/diet_numpy_timing.py).
    The weights are read from the Keras layers once, at the first prediction after the model is prepared.
    A message's input is built from its features directly (`NumpyDiet.given_for_message`): Rasa's model data
    and batch generator cost about as much as the NumPy prediction (a new complaint's parse 3.6 → 3.2 ms of
    CPU on the fifteenth session's host, bench/diet_numpy_timing.py); a message with other features goes Rasa's
    way. A model with anything the NumPy path does not implement (entity recognition, relative attention,
    ResponseSelector's model …: `diet_numpy.unsupported_reason`), and the first prediction (which prepares
    the model), keep TensorFlow, as does every other model (TED) through `RasaModel._rasa_predict`."""
    import logging

    import threadpoolctl
    from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.utils.tensorflow.constants import FEATURIZERS
    from rasa.utils.tensorflow.models import RasaModel

    from bot.nlu import diet_numpy

    # NumPy's BLAS on one thread: for products this small a second thread only spins and waits. With OpenBLAS's
    # two threads a prediction took twice its wall time in CPU (bench/diet_numpy_timing.py), CPU that the
    # replica's other messages need under load. Process-wide; TensorFlow's own thread pools are not BLAS's.
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")
    logger = logging.getLogger(__name__)

    def numpy_diet_of(model: Any) -> Optional[diet_numpy.NumpyDiet]:
        """The model's NumPy path, or None: not prepared for prediction yet (Rasa's first prediction prepares
        it), or set up in a way the NumPy path does not implement."""
        if not isinstance(model, DIET) or not model.prepared_for_prediction \
                or getattr(model, "all_labels_embed", None) is None:
            return None
        known = model.__dict__.get("_bot_numpy_diet")
        if known is None or known[0] is not model.all_labels_embed:  # prepared again: read again
            try:  # checks the model and reads its weights once
                numpy_diet = diet_numpy.NumpyDiet(model)
            except diet_numpy.Unsupported as reason:
                logger.debug(f"DIET predicts with TensorFlow: the NumPy path lacks {reason}.")
                numpy_diet = None
            known = model.__dict__["_bot_numpy_diet"] = (model.all_labels_embed, numpy_diet)
        return known[1]

    def outputs_of(model: Any, outputs: Dict[Text, Any]) -> Dict[Text, Any]:
        outputs[DIAGNOSTIC_DATA] = model._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
        return outputs

    def _rasa_predict(self: DIET, batch_in: Any) -> Dict[Text, Any]:
        numpy_diet = numpy_diet_of(self)
        if numpy_diet is None:
            return RasaModel._rasa_predict(self, batch_in)
        return outputs_of(self, numpy_diet.predict(batch_in))

    original_predict = DIETClassifier._predict

    def _predict(self: DIETClassifier, message: Any) -> Any:
        # One message's input straight from its features: Rasa's model data and batch generator for it took
        # about as long as the prediction itself (bench/diet_numpy_timing.py).
        numpy_diet = numpy_diet_of(self.model)
        given = numpy_diet.given_for_message(message, self.component_config[FEATURIZERS]) if numpy_diet else None
        if given is None:
            return original_predict(self, message)
        return outputs_of(self.model, numpy_diet.predict_given(given))

    _patch(DIET, "_rasa_predict", _rasa_predict)
    _patch(DIETClassifier, "_predict", _predict)


def _install_rule_matching_window() -> None:
    """The rule policy matches its rules against the last states only: `_get_possible_keys` went through every
    state of the conversation, but a rule is applicable without any check once the turn is further back than
    the rule is long (`_is_rule_applicable`), so states older than the longest rule keep every key. Those
    are left out here; the keys that come out are the same. And since the keys depend on nothing but those
    last states, they are remembered by them (conversations go through the same few turns again and again;
    matching every rule was a tenth of Rasa's CPU even over the last states only)."""
    from rasa.core.policies.rule_policy import RulePolicy

    original = RulePolicy._get_possible_keys
    known_lookups: Dict[int, Any] = {}
    remembered = 4096  # windows per lookup

    def frozen(state: Dict[Text, Any]) -> tuple:
        return tuple(sorted((name, tuple(sorted(sub.items())) if isinstance(sub, dict) else sub)
                            for name, sub in state.items()))

    def _get_possible_keys(self: RulePolicy, lookup: Dict[Text, Text], states: Any) -> Any:
        known = known_lookups.get(id(lookup))
        if known is None or known[0] is not lookup:  # the lookup is kept alive with what is known of it
            longest = max((len(self._rule_key_to_state(k)) for k in lookup), default=0)
            known = known_lookups[id(lookup)] = (lookup, longest, {})
        window = states[max(0, len(states) - known[1]):]
        try:
            key = tuple(frozen(state) for state in window)
            hash(key)
        except TypeError:  # a state value that cannot be a key: match as Rasa does
            return original(self, lookup, window)
        keys = known[2].get(key)
        if keys is None:
            if len(known[2]) >= remembered:
                known[2].clear()
            keys = known[2][key] = frozenset(original(self, lookup, window))
        return set(keys)

    _patch(RulePolicy, "_get_possible_keys", _get_possible_keys)


def rules_skip_the_text_look(policy: Any) -> bool:
    """Whether no rule of the policy (either lookup) can match the state the text look makes of a user message:
    its previous action is action_listen and its user part has the text but no intent. A rule cannot when its
    last state names an intent, or follows another action than action_listen."""
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH
    from rasa.shared.core.constants import ACTION_LISTEN_NAME, PREVIOUS_ACTION, SHOULD_NOT_BE_SET, USER
    from rasa.shared.nlu.constants import ACTION_NAME, INTENT

    def names(value: Any) -> bool:
        return bool(value) and value != SHOULD_NOT_BE_SET

    for lookup in (policy.lookup.get(RULES, {}), policy.lookup.get(RULES_FOR_LOOP_UNHAPPY_PATH, {})):
        for key in lookup:
            states = policy._rule_key_to_state(key)
            if not states:
                return False
            last = states[-1]
            after = last.get(PREVIOUS_ACTION, {}).get(ACTION_NAME)
            if not names(last.get(USER, {}).get(INTENT)) and not (names(after) and after != ACTION_LISTEN_NAME):
                return False
    return True


def _install_intent_only_rule_lookup() -> None:
    """After a user message the rule policy looks for a rule twice: first with the message's text in place of
    its intent (for rules written with the user's words), then with the intent. The text look takes the intent
    out of the last state, whose previous action is action_listen, so a rule whose last state names an intent
    or follows another action never matches it. When every rule is such a rule, as in this bot, the text look
    finds no action and no unhappy path, and `_predict` uses nothing else of what it returns: it is skipped. It
    had built the states and matched both lookups once more per message, half of the rule policy's time. A
    rule that could match the text (written with the user's words, say) keeps Rasa's two looks."""
    from rasa.core.policies.rule_policy import RulePolicy

    original = RulePolicy._find_action_from_rules

    def _find_action_from_rules(self: RulePolicy, tracker: Any, domain: Any,
                                use_text_for_last_user_input: bool) -> Any:
        if use_text_for_last_user_input:
            # Worked out again when the lookups change (training fills them in place).
            seen = tuple((id(lookup), len(lookup)) for lookup in self.lookup.values() if isinstance(lookup, dict))
            known = self.__dict__.get("_bot_skip_text_look")
            if known is None or known[0] != seen:
                known = self.__dict__["_bot_skip_text_look"] = (seen, rules_skip_the_text_look(self))
            if known[1]:
                return None, None, False
        return original(self, tracker, domain, use_text_for_last_user_input)

    _patch(RulePolicy, "_find_action_from_rules", _find_action_from_rules)


def _install_applied_events_reuse() -> None:
    """`DialogueStateTracker.applied_events` goes on from the events it went through last time instead of from
    the first event: it was called a dozen times per message (each policy's past states, the session check,
    slot lookups), and each call is quadratic in a form (every execution of the loop looks back for the
    previous one). Rasa's loop is followed event by event, so going on from where it stopped gives the same
    list, as long as the earlier events are the same objects (a tracker's events are only ever appended) and
    no new loop name appeared (the set of loop names, taken over all events, decides how earlier loop
    executions count): otherwise it starts from the first event again. Each call returns a new list."""
    from rasa.shared.core.events import (ActionExecuted, ActionReverted, ActiveLoop, Restarted, SessionStarted,
                                         UserUttered, UserUtteranceReverted)
    from rasa.shared.core.trackers import DialogueStateTracker

    def applied_events(self: DialogueStateTracker) -> Any:
        events = self.events
        count = len(events)
        seen = self.__dict__.get("_bot_applied")
        if (seen is not None and count >= seen[0] and seen[0] and events[0] is seen[1]
                and events[seen[0] - 1] is seen[2]):
            done, loop_names, applied = seen[0], seen[3], list(seen[4])
        else:
            done, loop_names, applied = 0, frozenset(), []
        new = list(itertools.islice(events, done, None))
        names = {e.name for e in new if isinstance(e, ActiveLoop) and e.name}
        if done and not names <= loop_names:  # a new loop name changes how its earlier executions count
            applied, new = [], list(events)
            names = {e.name for e in new if isinstance(e, ActiveLoop) and e.name}
        loop_names = loop_names | names
        for event in new:
            if isinstance(event, (Restarted, SessionStarted)):
                applied = []
            elif isinstance(event, ActionReverted):
                self._undo_till_previous(ActionExecuted, applied)
            elif isinstance(event, UserUtteranceReverted):
                self._undo_till_previous(UserUttered, applied)
                self._undo_till_previous(ActionExecuted, applied)
            elif (isinstance(event, ActionExecuted) and event.action_name in loop_names
                  and not self._first_loop_execution_or_unhappy_path(event.action_name, applied)):
                self._undo_till_previous_loop_execution(event.action_name, applied)
            else:
                applied.append(event)
        if count:
            self.__dict__["_bot_applied"] = (count, events[0], events[-1], loop_names, applied)
        return list(applied)

    _patch(DialogueStateTracker, "applied_events", applied_events)


def _install_past_states_reuse() -> None:
    """A tracker's past states are worked out as its events grow, instead of from the first event on every
    call (a prediction asks three times: twice for the rule policy, once for memoization; a turn makes two or
    three predictions). Rasa's states are a function of the applied events alone, visited in order
    (`Domain.states_for_tracker_history` over `generate_all_prior_trackers`): while the applied events of a
    call begin with the very event objects of the previous call's, the walk goes on from where it stopped;
    anything else (a reverted turn, a loop's rewound execution, another domain) walks again from the start.
    Each caller gets its own copy of the states (dicts of dicts of strings and tuples; Rasa edits the last
    one in place)."""
    from rasa.shared.core.trackers import DialogueStateTracker

    original = DialogueStateTracker.past_states

    def past_states(self: DialogueStateTracker, domain: Any, omit_unset_slots: bool = False,
                    ignore_rule_only_turns: bool = False, rule_only_data: Any = None) -> Any:
        if not self.events:
            return original(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        walks = self.__dict__.setdefault("_bot_state_walks", {})
        key = (id(domain), omit_unset_slots, ignore_rule_only_turns, id(rule_only_data))
        applied = self.applied_events()
        walk = walks.get(key)
        if walk is None or not walk.continues(domain, rule_only_data, applied):
            walk = walks[key] = _StateWalk(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        return [{name: dict(sub) if isinstance(sub, dict) else sub for name, sub in state.items()}
                for state in walk.states_after(applied)]

    _patch(DialogueStateTracker, "past_states", past_states)


class _StateWalk:
    """`Domain.states_for_tracker_history` as a walk that can be continued: the prior tracker, the states of
    the turns so far and the rule-only bookkeeping are kept between calls; `_visit` is Rasa's loop body.

    A form's next execution takes the turns since its previous one out of the applied events (Rasa folds a
    loop's happy path), so the events then no longer extend the walk's: the walk keeps a checkpoint after
    each of the last few loop executions and goes on from the newest one that is still a common start."""

    CHECKPOINTS = 3

    def __init__(self, tracker: Any, domain: Any, omit_unset_slots: bool, ignore_rule_only_turns: bool,
                 rule_only_data: Any) -> None:
        self.domain, self.rule_only_data = domain, rule_only_data  # kept alive: their ids are in the key
        self.omit_unset_slots, self.ignore_rule_only_turns = omit_unset_slots, ignore_rule_only_turns
        self.loop_names = frozenset(domain.form_names)
        self.prior = tracker.init_copy()
        self.applied: list = []
        self.states: list = []
        self.last_ml_action_sub_state: Any = None
        self.turn_was_hidden = False
        self.checkpoints: list = []  # (applied count, state count, rule-only bookkeeping, prior tracker copy)

    def continues(self, domain: Any, rule_only_data: Any, applied: list) -> bool:
        """Whether the walk fits `applied` (going back to a checkpoint if that makes it fit)."""
        if domain is not self.domain or rule_only_data is not self.rule_only_data:
            return False
        done = self.applied
        common = 0
        for a, b in zip(done, applied):
            if a is not b:
                break
            common += 1
        if common == len(done):
            return True
        for index in range(len(self.checkpoints) - 1, -1, -1):
            count, n_states, last_ml, hidden, prior = self.checkpoints[index]
            if count <= common:
                del self.checkpoints[index + 1:]
                del self.applied[count:]
                del self.states[n_states:]
                self.last_ml_action_sub_state, self.turn_was_hidden = last_ml, hidden
                self.prior = fork_tracker(prior)
                return True
        return False

    def states_after(self, applied: list) -> list:
        from rasa.shared.core.events import ActionExecuted

        for event in applied[len(self.applied):]:
            executed = isinstance(event, ActionExecuted)
            if executed:
                self._visit(event.hide_rule_turn)
            self.prior.update(event)
            self.applied.append(event)
            if executed and event.action_name in self.loop_names:
                self.checkpoints.append((len(self.applied), len(self.states), self.last_ml_action_sub_state,
                                         self.turn_was_hidden, fork_tracker(self.prior)))
                del self.checkpoints[:-self.CHECKPOINTS]
        # The state after the last event is not kept: the next call may bring more events before it.
        kept = (len(self.states), self.last_ml_action_sub_state, self.turn_was_hidden)
        self._visit(False)
        states = list(self.states)
        del self.states[kept[0]:]
        self.last_ml_action_sub_state, self.turn_was_hidden = kept[1], kept[2]
        return states

    def _visit(self, hide_rule_turn: bool) -> None:
        import rasa.shared.core.constants as constants

        domain, tr, states = self.domain, self.prior, self.states
        if self.ignore_rule_only_turns:
            # remember previous ml action based on the last non hidden turn
            if not self.turn_was_hidden:
                self.last_ml_action_sub_state = domain._get_prev_action_sub_state(tr)
            # followup action or happy path loop prediction don't change whether the turn is hidden
            if not tr.followup_action and not tr.latest_action_name == tr.active_loop_name:
                self.turn_was_hidden = hide_rule_turn
            if self.turn_was_hidden:
                return
        state = domain.get_active_state(tr, omit_unset_slots=self.omit_unset_slots)
        if self.ignore_rule_only_turns:
            domain._remove_rule_only_features(state, self.rule_only_data)
            if states:
                domain._substitute_rule_only_user_input(state, states[-1])
            if self.last_ml_action_sub_state:
                state[constants.PREVIOUS_ACTION] = self.last_ml_action_sub_state
        states.append(domain._clean_state(state))


def _install_tracker_copy() -> None:
    """`DialogueStateTracker.copy` forks the tracker instead of replaying every event into a new one (a form
    copies the tracker on every turn it runs). A tracker's state is made by its events alone, so the fork
    is the replay's result; like Rasa's copy it has no model or assistant id (those are set on the tracker,
    not by events) and no sender source."""
    from rasa.shared.core.trackers import DialogueStateTracker

    def copy(self: DialogueStateTracker) -> DialogueStateTracker:
        fork = fork_tracker(self)
        fork.model_id = fork.assistant_id = fork.sender_source = None
        return fork

    _patch(DialogueStateTracker, "copy", copy)


def _install_feature_joining() -> None:
    """A message's sparse features (one COO matrix per featurizer) are joined side by side in one step: the
    blocks' entries are concatenated with their column offsets, in block order, which is exactly what
    `hstack` of COO blocks builds (same entries, same order, same dtype). Any other kind of block, a
    mismatch in rows, and dense features are Rasa's own code, errors included."""
    import numpy as np
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.nlu.training_data.message import Message
    from scipy.sparse._sputils import get_index_dtype, upcast  # what `bmat` itself uses

    original = Message._combine_features

    def _combine_features(features: Any, featurizers: Any) -> Any:
        blocks = [f.features for f in features]
        if (len(blocks) < 2 or not all(isinstance(b, scipy.sparse.coo_matrix) for b in blocks)
                or len({b.shape[0] for b in blocks}) != 1):
            return original(features, featurizers)
        offsets = np.cumsum([0] + [b.shape[1] for b in blocks])
        dtype = upcast(*[b.dtype for b in blocks])
        index = get_index_dtype(maxval=max(int(offsets[-1]), blocks[0].shape[0]))
        joined = scipy.sparse.coo_matrix(
            (np.concatenate([b.data for b in blocks]).astype(dtype, copy=False),
             (np.concatenate([b.row for b in blocks]).astype(index, copy=False),
              np.concatenate([b.col + offset for b, offset in zip(blocks, offsets)]).astype(index, copy=False))),
            shape=(blocks[0].shape[0], int(offsets[-1])))
        first = features[0]
        return Features(joined, first.type, first.attribute, featurizers)

    _patch(Message, "_combine_features", staticmethod(_combine_features))


def _install_shallow_fake_features() -> None:
    """DIET works out "fake" (empty) features for every message it classifies: a deep copy of the message's real
    features, whose matrices are then replaced by empty ones. Copying the matrices first was a tenth of DIET's
    CPU per message; the copy here keeps everything but the matrix, which it sets as Rasa does."""
    import numpy as np
    import scipy.sparse
    from rasa.utils.tensorflow import model_data_utils

    def _create_fake_features(all_features: Any) -> Any:
        example = next(iter([features for per_example in all_features for features in per_example
                             if features is not None]))
        fake = []
        for features in example:
            new = copy.copy(features)
            new.origin = copy.deepcopy(features.origin)  # a name or a list of names: nothing shared
            if features.is_dense():
                new.features = np.zeros((0, features.features.shape[-1]), features.features.dtype)
            if features.is_sparse():
                new.features = scipy.sparse.coo_matrix((0, features.features.shape[-1]), features.features.dtype)
            fake.append(new)
        return fake

    _patch(model_data_utils, "_create_fake_features", _create_fake_features)


def _install_in_order_graph_runner() -> None:
    """A graph run (a parse, each prediction) calls the nodes its targets need one after another, each after
    the nodes it needs, as dask's synchronous scheduler does, but without building a dask graph and dask's
    scheduling state every time: the order is worked out once per runner, targets and input names. As with
    dask, an input replaces a node of the same name, a need that names nothing is passed as the bare name,
    and a node's RuntimeError becomes Rasa's GraphRunError."""
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def plan(self: DaskGraphRunner, targets: tuple, input_names: tuple) -> tuple:
        nodes = self._graph_schema.minimal_graph_schema(list(targets)).nodes
        order: list = []
        state: Dict[Text, int] = {}  # 1: being visited, 2: done

        def visit(name: Text) -> None:
            if name in input_names or name not in nodes or state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise GraphRunError(f"The graph has a cycle through '{name}'.")
            state[name] = 1
            needs = tuple(nodes[name].needs.values())
            for need in needs:
                visit(need)
            state[name] = 2
            order.append((name, self._instantiated_nodes[name], needs))

        for target in targets:
            visit(target)
        return order, frozenset(nodes)

    def run(self: DaskGraphRunner, inputs: Any = None, targets: Any = None) -> Dict[Text, Any]:
        run_targets = tuple(targets if targets else self._graph_schema.target_names)
        inputs = inputs or {}
        plans = self.__dict__.setdefault("_bot_plans", {})
        key = (run_targets, tuple(inputs))
        hit = plans.get(key)
        if hit is None:
            hit = plans[key] = plan(self, run_targets, tuple(inputs))
        steps, node_names = hit
        results: Dict[Text, Any] = {}
        for name, value in inputs.items():  # Rasa's own check, in Rasa's order
            if isinstance(value, str) and (value in node_names or value in results):
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of the input names "
                    f"passed to the `run` method are the same as node names in the graph schema.")
            results[name] = (name, value)
        try:
            for name, node, needs in steps:
                results[name] = node(*[results.get(need, need) for need in needs])
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(results.get(target, target) for target in run_targets)

    _patch(DaskGraphRunner, "run", run)


def fork_tracker(tracker: Any) -> Any:
    """A copy of a tracker that can grow on its own: its own event list, slots, active loop and latest action;
    the event objects themselves are shared (Rasa does not change an event once it is applied, except the
    latest user event's featurization flag, which a later event sets the same way on every copy). What the
    patches here keep on a tracker is shared too: each use checks that it still fits the tracker's events."""
    fork = _plain_copy(tracker)
    fork.events = tracker._create_events(list(tracker.events))
    fork.slots = type(tracker.slots)((name, _plain_copy(slot)) for name, slot in tracker.slots.items())
    fork.active_loop = _plain_copy(tracker.active_loop)
    fork.latest_action = dict(tracker.latest_action) if tracker.latest_action is not None else None
    walks = tracker.__dict__.get("_bot_state_walks")
    if walks is not None:
        fork._bot_state_walks = dict(walks)
    return fork


def _install_direct_count_vectors() -> None:
    """A count-vector featurizer's features for a message come straight from its fitted vectorizer's own
    analyzer (built once per vectorizer and vocabulary) and vocabulary, as COO matrices: the same entries,
    order and dtypes as `transform`, `sort_indices` and `tocoo`, which built and checked a CSR matrix first
    and the analyzer every time. A vectorizer without a fitted vocabulary is Rasa's own code, errors included."""
    import numpy as np
    import scipy.sparse
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
    from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES

    original = CountVectorsFeaturizer._create_features
    known: Dict[int, Any] = {}

    def counter_of(vectorizer: Any) -> Any:
        vocabulary = getattr(vectorizer, "vocabulary_", None)
        if not isinstance(vocabulary, dict) or not vocabulary:
            return None
        hit = known.get(id(vectorizer))
        if hit is None or hit[0] is not vectorizer or hit[1] is not vocabulary:
            hit = known[id(vectorizer)] = (vectorizer, vocabulary, _counts(vectorizer.build_analyzer(), vocabulary,
                                                                         vectorizer.dtype, vectorizer.binary))
        return hit[2]

    def _counts(analyze: Any, vocabulary: Dict[Text, int], dtype: Any, binary: bool) -> Any:
        width = len(vocabulary)

        def counts(documents: Any) -> Any:
            rows, columns, values = [], [], []
            for row, document in enumerate(documents):
                counter: Dict[int, int] = {}
                for feature in analyze(document):
                    column = vocabulary.get(feature)
                    if column is not None:
                        counter[column] = counter.get(column, 0) + 1
                for column in sorted(counter):  # what sort_indices leaves in each row
                    rows.append(row)
                    columns.append(column)
                    values.append(1 if binary else counter[column])
            # The index dtype is the one COO picks for the shape, as in `tocoo`.
            return scipy.sparse.coo_matrix((np.asarray(values, dtype=dtype), (rows, columns)),
                                           shape=(len(documents), width))

        return counts

    def _create_features(self: CountVectorsFeaturizer, attribute: Text, all_tokens: Any) -> Any:
        vectorizer = self.vectorizers.get(attribute)
        counts = counter_of(vectorizer) if vectorizer else None
        if counts is None:
            return original(self, attribute, all_tokens)
        sequence_features, sentence_features = [], []
        for tokens in all_tokens:
            if not tokens:
                sequence_features.append(None)
                sentence_features.append(None)
                continue
            sequence_features.append(counts(tokens))
            sentence_features.append(counts([" ".join(tokens)]) if attribute in DENSE_FEATURIZABLE_ATTRIBUTES
                                     else None)
        return sequence_features, sentence_features

    _patch(CountVectorsFeaturizer, "_create_features", _create_features)


def _install_empty_domain_check() -> None:
    """`Domain.is_empty` compares the domain with an empty one, which it built from nothing on every call (every
    parse checks the domain so); the empty domain's dictionary is built once here, and kept where nothing else
    can change it."""
    from rasa.shared.core.domain import Domain

    empty = Domain.empty().as_dict()

    def is_empty(self: Domain) -> bool:
        return self.as_dict() == empty

    _patch(Domain, "is_empty", is_empty)


def _plain_copy(obj: Any) -> Any:
    """`copy.copy` of an object whose class copies the generic way (no `__copy__`, `__reduce__`, `__reduce_ex__`,
    `__setstate__`, `__getnewargs__` or named `__slots__`, not a type, list or dict, nothing in `copyreg`): a new
    instance with the same attributes, which is what `copy.copy` builds through the reduce protocol. Anything
    else goes to `copy.copy`."""
    cls = type(obj)
    plain = _PLAIN_CLASSES.get(cls)
    if plain is None:
        plain = _PLAIN_CLASSES[cls] = (
            cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and cls.__new__ is object.__new__ and cls not in copyreg.dispatch_table
            and not issubclass(cls, (type, list, dict))
            and not any(hasattr(cls, name) for name in ("__copy__", "__setstate__", "__getstate__", "__getnewargs__",
                                                        "__getnewargs_ex__"))
            and not copyreg._slotnames(cls)  # what the reduce protocol copies besides __dict__ (ABC's are none)
            and isinstance(getattr(obj, "__dict__", None), dict))
    if not plain:
        return copy.copy(obj)
    new = object.__new__(cls)
    new.__dict__.update(obj.__dict__)
    return new


_PLAIN_CLASSES: Dict[type, bool] = {}


class _PlainCopyModule:
    """Stands for the `copy` module in a module that uses nothing of it but `copy.copy`."""

    copy = staticmethod(_plain_copy)


def _install_plain_slot_copies() -> None:
    """A new tracker copies every slot of the domain with `copy.copy` (trackers.py's only use of the module);
    slots are plain objects, so the copy is made directly (`_plain_copy`)."""
    import rasa.shared.core.trackers as trackers

    _patch(trackers, "copy", _PlainCopyModule)


class _LogOnlyCopies:
    """Stands for the `copy` module in `rasa.core.processor`, where every deep copy is an argument of a debug log
    call (copied so that an anonymizing log processor cannot change the events themselves). When the configured
    structlog wrapper drops debug calls (`_nop`), the call does nothing with its arguments, and the copy is
    skipped; at DEBUG level it is made as before."""

    get_config: Any = None  # structlog.get_config and structlog's `_nop`, set at install
    nop: Any = None

    @classmethod
    def deepcopy(cls, value: Any, memo: Any = None) -> Any:
        if getattr(cls.get_config()["wrapper_class"], "debug", None) is cls.nop:
            return value
        return copy.deepcopy(value, memo)


def _install_log_only_copies() -> None:
    import rasa.core.processor as processor
    import structlog
    from structlog._native import _nop

    _LogOnlyCopies.get_config, _LogOnlyCopies.nop = structlog.get_config, _nop
    _patch(processor, "copy", _LogOnlyCopies)


class _NotATree(Exception):
    """A value holds something else than dicts, lists, tuples, strings, numbers, booleans and None."""


_TREE_LEAVES = frozenset({str, int, float, bool, type(None)})


def _tree_copy(value: Any) -> Any:
    """What `dataclasses.asdict` makes of a field's value when it is a tree of dicts, lists and tuples (exactly
    those types) with strings, numbers, booleans and None as leaves: new containers, the leaves themselves (their
    deep copy is the leaf itself). Raises `_NotATree` for anything else."""
    kind = type(value)
    if kind in _TREE_LEAVES:
        return value
    if kind is dict:
        return {_tree_copy(k): _tree_copy(v) for k, v in value.items()}
    if kind is list:
        return [_tree_copy(v) for v in value]
    if kind is tuple:
        return tuple([_tree_copy(v) for v in value])
    raise _NotATree


def _tree_asdict(obj: Any, *, dict_factory: Any = dict) -> Any:
    """`dataclasses.asdict`, made directly for a dataclass whose fields are trees (`_tree_copy`); anything else
    is `dataclasses.asdict`'s own work."""
    import dataclasses

    if dict_factory is dict and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        try:
            return {field.name: _tree_copy(getattr(obj, field.name)) for field in dataclasses.fields(obj)}
        except _NotATree:
            pass
    return dataclasses.asdict(obj, dict_factory=dict_factory)


class _TreeAsdictModule:
    """Stands for the `dataclasses` module in `rasa.shared.core.trackers`, whose only use of it after the import
    is `dataclasses.asdict(self.active_loop)` in `current_state`: the form's state, with the whole parse of the
    message that started it, goes out with every custom-action call. `asdict` deep-copied every value of that parse
    one `copy.deepcopy` at a time (3.5 % of a replica's samples under load); `_tree_asdict` builds the same dict
    directly. Every other name is the module's own."""

    asdict = staticmethod(_tree_asdict)

    def __getattr__(self, name: str) -> Any:
        import dataclasses

        return getattr(dataclasses, name)


def _install_tree_copied_loop_state() -> None:
    import rasa.shared.core.trackers as trackers

    _patch(trackers, "dataclasses", _TreeAsdictModule())


def _install_direct_response_choice() -> None:
    """Rasa picks one of a response's variations with `np.random.choice(variations)`, which first turns the list
    of dicts into a NumPy object array (1 % of a replica's samples under load). For a list without weights,
    `choice` draws `randint(0, len)` from NumPy's global generator and returns that element: the pick here draws
    the same number and takes the variation from the list, so a seeded generator picks as before. The variations
    are filtered by Rasa's own ResponseVariationFilter, and a conditional variation is logged as Rasa logs it."""
    import logging

    import numpy as np
    from rasa.core.nlg.generator import ResponseVariationFilter
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
    from rasa.shared.constants import RESPONSE_CONDITION

    logger = logging.getLogger("rasa.core.nlg.response")

    def _random_response_for(self: TemplatedNaturalLanguageGenerator, utter_action: Text, output_channel: Text,
                             filled_slots: Dict[Text, Any]) -> Optional[Dict[Text, Any]]:
        if utter_action not in self.responses:
            return None
        suitable = ResponseVariationFilter(self.responses).responses_for_utter_action(
            utter_action, output_channel, filled_slots)
        if not suitable:
            return None
        selected = suitable[np.random.randint(0, len(suitable))]
        condition = selected.get(RESPONSE_CONDITION)
        if condition:
            logger.debug("Selecting response variation with conditions:"
                         f"{self._format_response_conditions(condition)}")
        return selected

    _patch(TemplatedNaturalLanguageGenerator, "_random_response_for", _random_response_for)


def _install_entity_free_states() -> None:
    """A conversation state lists the entities of the latest message that its intent wants; most messages have
    none, and then the answer is an empty set whatever the intent wants (Rasa built the set of the intent's
    wanted entities for every state of every prediction first). Messages with entities are Rasa's own code."""
    from rasa.shared.core.domain import Domain

    original = Domain._get_featurized_entities

    def _get_featurized_entities(self: Domain, latest_message: Any) -> Any:
        if not latest_message.entities:
            return set()
        return original(self, latest_message)

    _patch(Domain, "_get_featurized_entities", _get_featurized_entities)


def _install_payload_parse() -> None:
    """A button's payload (`/inform{"order_no":"…"}`, `/deny`) skips the NLU components. Rasa runs them all on
    it (about 7 ms of CPU on this bot's pipeline) and then its RegexMessageHandler, the NLU graph's last node,
    replaces the message with one made from the payload alone (YAMLStoryReader.unpack_regex_message). Here that
    message is made directly. Text that is not a payload of a known intent goes through the graph as before."""
    from rasa.core.processor import MessageProcessor
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
    from rasa.shared.constants import INTENT_MESSAGE_PREFIX
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
    from rasa.shared.nlu.training_data.message import Message

    original = MessageProcessor._parse_message_with_graph
    pattern = YAMLStoryReader._regex_message_pattern()
    handler = RegexMessageHandler.__name__  # what the entities of a payload say extracted them
    handler_node = "run_RegexMessageHandler"

    def _parse_message_with_graph(self: MessageProcessor, message: Any, tracker: Any,
                                  only_output_properties: bool = True) -> Dict[Text, Any]:
        text = (message.text or "").strip()
        match = pattern.match(text) if text.startswith(INTENT_MESSAGE_PREFIX) else None
        # Not a payload, an intent the domain lacks (Rasa warns and lets the components decide), or a graph
        # whose NLU does not end in the handler: Rasa's way.
        if (match is None or match.group(INTENT_NAME_KEY).strip() not in self.domain.intents
                or self.model_metadata.nlu_target != handler_node):
            return original(self, message, tracker, only_output_properties)
        plain = Message({TEXT: message.text})
        unpacked = YAMLStoryReader.unpack_regex_message(plain, self.domain, entity_extractor_name=handler)
        if unpacked is plain:
            return original(self, message, tracker, only_output_properties)
        parse_data = {TEXT: "", INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, ENTITIES: []}
        parse_data.update(unpacked.as_dict(only_output_properties=only_output_properties))
        return parse_data

    _patch(MessageProcessor, "_parse_message_with_graph", _parse_message_with_graph)


# The parse cache: how many texts one model keeps (BOT_PARSE_CACHE_SIZE, 0: none), and which texts it keeps.
# Repeated texts are short (你好, 确认, 好的，谢谢); a text with a digit is an order, phone or tracking number,
# an amount or a date: it seldom repeats, and personal data should not stay in memory for other conversations' sake.
PARSE_CACHE_SIZE = 4096
PARSE_CACHE_MAX_CHARS = 32
_UNCACHED = re.compile(r"\d")
PARSE_CACHE_STATS: Counter = Counter()  # hits, misses, skipped: this process's, for the health route


class ParseCache:
    """The NLU results of the latest distinct texts of one loaded model, the least recently used dropped first.
    It holds copies: the processor and the events it makes may change the result they get."""

    def __init__(self, size: Optional[int] = None) -> None:
        self.size = PARSE_CACHE_SIZE if size is None else size
        self._results: "OrderedDict[Text, Dict[Text, Any]]" = OrderedDict()

    @staticmethod
    def keeps(text: Text) -> bool:
        # (A button's payload, "/…", has its own quick way: _install_payload_parse.)
        return (0 < len(text) <= PARSE_CACHE_MAX_CHARS and not text.startswith("/")
                and not _UNCACHED.search(text))

    def get(self, text: Text) -> Optional[Dict[Text, Any]]:
        result = self._results.get(text)
        if result is None:
            return None
        self._results.move_to_end(text)
        return copy.deepcopy(result)

    def put(self, text: Text, result: Dict[Text, Any]) -> None:
        self._results[text] = copy.deepcopy(result)
        self._results.move_to_end(text)
        if len(self._results) > self.size:
            self._results.popitem(last=False)

    def __len__(self) -> int:
        return len(self._results)


def parse_cache_stats() -> Dict[Text, int]:
    """This process's parse cache figures: hits, misses (parsed, then kept) and skipped (never kept: long texts,
    texts with digits, payloads, parses asking for more than the output properties, or the cache turned off)."""
    return {key: PARSE_CACHE_STATS[key] for key in ("hits", "misses", "skipped")}


def _install_parse_cache() -> None:
    """A text the model has parsed before gets the same result without the NLU components (jieba, the entity
    rules, the featurizers, DIET: about 3 ms of CPU per complaint on a fast host, measured in process). The
    result of the graph depends on the text alone: the output properties hold no message id, metadata or time,
    and no component keeps state between messages. Each loaded model (processor) has its own cache, so a new
    model starts empty."""
    from rasa.core.processor import MessageProcessor

    parse = MessageProcessor._parse_message_with_graph  # payloads are already cheap there

    def _parse_message_with_graph(self: MessageProcessor, message: Any, tracker: Any,
                                  only_output_properties: bool = True) -> Dict[Text, Any]:
        text = message.text or ""
        if not only_output_properties or PARSE_CACHE_SIZE <= 0 or not ParseCache.keeps(text):
            PARSE_CACHE_STATS["skipped"] += 1
            return parse(self, message, tracker, only_output_properties)
        cache = self.__dict__.get("_parse_cache")
        if cache is None:
            cache = self.__dict__["_parse_cache"] = ParseCache()
        result = cache.get(text)
        if result is not None:
            PARSE_CACHE_STATS["hits"] += 1
            return result
        PARSE_CACHE_STATS["misses"] += 1
        result = parse(self, message, tracker, only_output_properties)
        cache.put(text, result)
        return result

    _patch(MessageProcessor, "_parse_message_with_graph", _parse_message_with_graph)
