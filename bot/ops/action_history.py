"""Which custom actions read the conversation's history (imported by Rasa's guard and by the action tests).

Every other action is sent only the events of the turn at hand, from the buyer's latest message on, with the
whole current state as before (slots, latest message, active form, latest action). The whole history made
each action call 16 KiB of JSON that Rasa built and sent and the action server parsed, growing with every
turn; the forms need only the turn's slot events, and the actions read slots and the latest message.
An action that reads `tracker.events` or the SDK's history helpers must be named here
(tests/actions/test_history.py checks the action code for them).
"""

ACTIONS_READING_HISTORY = frozenset({
    "action_notify_update",  # says a notice once, even when a worker delivered it twice (actions/status.py)
})

# Helpers that read only the turn's events (from the buyer's latest message on), which every action call carries.
FUNCTIONS_READING_THE_TURN = frozenset({
    "turn_events",  # the events after the buyer's latest message (actions/after_sale.py)
    "start_application",  # replaces the slot candidates Rasa put at the end of the turn (actions/after_sale.py)
})
