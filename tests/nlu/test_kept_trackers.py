"""A replica reuses the tracker it saved (bot/ops/rasa_guard.py, StrictSQLTrackerStore): what it hands out
equals a fresh read of the database after every turn of every training conversation, and anything that
changed the conversation elsewhere makes it read afresh."""

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, DefinePrevUserUtteredFeaturization, Event, SessionStarted,
                                     SlotSet, UserUttered)
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.importers.importer import TrainingDataImporter

from bot.ops import rasa_guard

ROOT = Path(__file__).resolve().parents[2]
RULE_ONLY = {"slots": ["requested_slot"], "loops": ["after_sale_form"]}
ARGUMENTS = list(itertools.product((False, True), (False, True), (None, RULE_ONLY)))


@pytest.fixture(scope="module")
def training():
    importer = TrainingDataImporter.load_from_config(str(ROOT / "config.yml"), str(ROOT / "domain.yml"),
                                                     [str(ROOT / "data")])
    domain = importer.get_domain()
    return domain, TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()


def store(domain: Domain, path: Path) -> rasa_guard.StrictSQLTrackerStore:
    return rasa_guard.StrictSQLTrackerStore(domain=domain, dialect="sqlite", db=str(path))


def run(coroutine):
    return asyncio.run(coroutine)


class Reads:
    """Counts how a store answered: from the kept tracker or by reading the events."""

    def __init__(self, replica: rasa_guard.StrictSQLTrackerStore) -> None:
        self.kept = self.read = 0
        original = replica._read_events

        def counted(*args, **kwargs):
            events, probe = original(*args, **kwargs)
            if events is None:
                self.kept += 1
            else:
                self.read += 1
            return events, probe

        replica._read_events = counted


def fresh_copies(events: list) -> list:
    """New event objects, as a turn makes them (the stored ones are never handed in again)."""
    return [Event.from_parameters(event.as_dict()) for event in events]


def turns(events: list) -> list[list]:
    """A conversation cut before each user message: one list of events per handled message."""
    cut = [[]]
    for event in events:
        if isinstance(event, UserUttered) and cut[-1]:
            cut.append([])
        cut[-1].append(event)
    return cut


def assert_same(mine: DialogueStateTracker, fresh: DialogueStateTracker, domain: Domain) -> None:
    assert mine is not fresh
    assert mine.current_state(EventVerbosity.ALL) == fresh.current_state(EventVerbosity.ALL)
    assert {n: s.value for n, s in mine.slots.items()} == {n: s.value for n, s in fresh.slots.items()}
    assert mine.active_loop == fresh.active_loop
    assert (mine.latest_action, mine.followup_action, mine.is_paused()) == \
        (fresh.latest_action, fresh.followup_action, fresh.is_paused())
    for omit, ignore, rules in ARGUMENTS:
        assert mine.past_states(domain, omit, ignore, rules) == fresh.past_states(domain, omit, ignore, rules)
    assert getattr(mine, rasa_guard._STORED) == getattr(fresh, rasa_guard._STORED)


def test_every_turn_of_every_training_conversation_reads_back_as_a_fresh_read(training, tmp_path):
    domain, conversations = training
    replica = store(domain, tmp_path / "rasa.db")
    reads = Reads(replica)
    handed = 0
    for number, generated in enumerate(conversations):
        sender = f"buyer-{number}"
        for turn in turns(list(generated.events)):
            tracker = run(replica.retrieve(sender)) or DialogueStateTracker(sender, domain.slots)
            tracker.past_states(domain)  # a prediction before the turn's events, as in a real turn
            for event in fresh_copies(turn):
                tracker.update(event, domain)
                if isinstance(event, UserUttered):  # what the first prediction after a user message logs
                    tracker.update(DefinePrevUserUtteredFeaturization(False), domain)
            run(replica.save(tracker))
            mine = run(replica.retrieve(sender))
            fresh = run(store(domain, tmp_path / "rasa.db").retrieve(sender))  # another replica: reads
            assert_same(mine, fresh, domain)
            handed += 1
    assert handed > 100
    # Only each conversation's first turn read (and found nothing); every other turn used the kept tracker.
    assert (reads.read, reads.kept) == (len(conversations), 2 * handed - len(conversations))


def conversation_so_far(replica, domain, sender: str, begin_session: bool) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, domain.slots)
    if begin_session:
        tracker.update(ActionExecuted("action_session_start"), domain)
        time.sleep(0.001)  # the session start is newer than the action that began it, as in Rasa
        tracker.update(SessionStarted(), domain)
    for event in [ActionExecuted("action_listen"), UserUttered("我要退货", {"name": "request_return"}),
                  ActionExecuted("action_answer_shipping_fee"), SlotSet("order_no", "202611200000000104")]:
        tracker.update(event, domain)
    run(replica.save(tracker))
    return tracker


def test_a_turn_that_failed_after_changing_the_tracker_leaves_no_trace(training, tmp_path):
    domain, _ = training
    replica = store(domain, tmp_path / "rasa.db")
    conversation_so_far(replica, domain, "buyer-1", begin_session=False)
    handed = run(replica.retrieve("buyer-1"))
    handed.update(SlotSet("order_no", "202611200000000999"), domain)  # and then the action server died
    again = run(replica.retrieve("buyer-1"))
    assert again.get_slot("order_no") == "202611200000000104"
    assert_same(again, run(store(domain, tmp_path / "rasa.db").retrieve("buyer-1")), domain)


def test_another_replicas_turn_is_read_afresh(training, tmp_path):
    domain, _ = training
    one, other = store(domain, tmp_path / "rasa.db"), store(domain, tmp_path / "rasa.db")
    reads = Reads(one)
    conversation_so_far(one, domain, "buyer-2", begin_session=False)
    elsewhere = run(other.retrieve("buyer-2"))
    elsewhere.update(SlotSet("order_no", "202611200000000555"), domain)
    run(other.save(elsewhere))
    mine = run(one.retrieve("buyer-2"))
    assert mine.get_slot("order_no") == "202611200000000555"
    assert (reads.kept, reads.read) == (0, 1)
    assert_same(mine, run(store(domain, tmp_path / "rasa.db").retrieve("buyer-2")), domain)


def test_a_turn_that_began_a_session_is_not_kept(training, tmp_path):
    """A fresh read starts at the newest session start, so a tracker that also holds the action before it is
    not what a read gives: the next turn reads."""
    domain, _ = training
    replica = store(domain, tmp_path / "rasa.db")
    reads = Reads(replica)
    conversation_so_far(replica, domain, "buyer-3", begin_session=True)
    assert "buyer-3" not in replica._kept()
    tracker = run(replica.retrieve("buyer-3"))
    assert reads.read == 1
    assert isinstance(tracker.events[0], SessionStarted)
    run(replica.save(tracker))
    run(replica.retrieve("buyer-3"))
    assert reads.kept == 1


def test_handed_out_trackers_do_not_share_state(training, tmp_path):
    domain, _ = training
    replica = store(domain, tmp_path / "rasa.db")
    conversation_so_far(replica, domain, "buyer-4", begin_session=False)
    first = run(replica.retrieve("buyer-4"))
    first.update(SlotSet("order_no", None), domain)
    first.update(ActionExecuted("after_sale_form"), domain)
    second = run(replica.retrieve("buyer-4"))
    assert second.get_slot("order_no") == "202611200000000104"
    assert len(second.events) == len(first.events) - 2
    assert second.latest_action_name == "action_answer_shipping_fee"


def test_a_replica_keeps_at_most_its_limit_of_conversations(training, tmp_path, monkeypatch):
    domain, _ = training
    monkeypatch.setattr(rasa_guard, "KEPT_TRACKERS", 2)
    replica = store(domain, tmp_path / "rasa.db")
    for n in range(4):
        conversation_so_far(replica, domain, f"buyer-{n}", begin_session=False)
    assert list(replica._kept()) == ["buyer-2", "buyer-3"]  # the least recently used went first
    monkeypatch.setattr(rasa_guard, "KEPT_TRACKERS", 0)
    conversation_so_far(replica, domain, "buyer-9", begin_session=False)
    assert "buyer-9" not in replica._kept()
