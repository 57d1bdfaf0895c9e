"""Rasa sends an action the events of the turn at hand only, unless bot.ops.action_history names it: every action
whose code (or a helper it calls in its module) reads the history must be named there."""

import ast
import inspect
import re
from pathlib import Path

from rasa_sdk import Action

import actions
from bot.ops.action_history import ACTIONS_READING_HISTORY, FUNCTIONS_READING_THE_TURN

HISTORY = re.compile(r"\.events\b|applied_events|get_last_event_for|events_after_latest_restart|"
                     r"last_executed_action_has|idx_after_latest_restart")


def _functions_reading_history(tree: ast.Module, source: str) -> set[str]:
    """Module-level functions and classes whose body reads the history, directly or through one another."""
    bodies = {node.name: ast.get_source_segment(source, node) or "" for node in tree.body
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    reading = {name for name, body in bodies.items() if HISTORY.search(body)} - FUNCTIONS_READING_THE_TURN
    grown = True
    while grown:  # a helper of a helper
        more = {name for name, body in bodies.items()
                if name not in reading and any(re.search(rf"\b{helper}\(", body) for helper in reading)}
        reading |= more
        grown = bool(more)
    return reading


def test_every_action_that_reads_the_history_is_sent_it():
    readers, checked = set(), 0
    for path in sorted(Path(actions.__file__).parent.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        reading = _functions_reading_history(ast.parse(source), source)
        module = __import__(f"actions.{path.stem}", fromlist=["*"])
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Action) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                checked += 1
                if name in reading:
                    readers.add(cls().name())
    assert checked > 15
    assert readers, "the check found no reader at all: it would not notice a new one"
    assert readers <= ACTIONS_READING_HISTORY, readers - ACTIONS_READING_HISTORY
