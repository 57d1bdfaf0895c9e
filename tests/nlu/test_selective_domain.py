"""Rasa sends no domain with an action call (enable_selective_domain); the action server reads its own
domain.yml instead (actions/common.local_domain). What the actions and rasa_sdk's form validation read
of it must be exactly what Rasa would have sent."""

import re
from pathlib import Path

import yaml
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_action_servers_domain_is_what_rasa_would_send():
    sent = Domain.load(str(ROOT / "domain.yml")).as_dict()
    local = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))  # as actions/common.py reads it
    assert local["forms"] == sent["forms"]  # rasa_sdk: the form's required slots
    assert local["responses"] == sent["responses"]  # actions: texts built from parts (text_of)
    assert set(local["slots"]) == set(sent["slots"])
    for name, slot in local["slots"].items():  # rasa_sdk: which slots are global, which belong to the form
        assert slot.get("mappings") == sent["slots"][name].get("mappings"), name


def test_rasa_sends_no_domain_with_an_action_call(monkeypatch):
    monkeypatch.setenv("BOT_ACTION_URL", "http://127.0.0.1:5055/webhook")
    for endpoints in (ROOT / "endpoints.yml", ROOT / "bot" / "ops" / "deploy" / "endpoints.yml"):
        for name in re.findall(r"\$\{(BOT_\w+)\}", endpoints.read_text()):
            monkeypatch.setenv(name, "1")  # the files' other endpoints are read too
        config = read_endpoint_config(str(endpoints), "action_endpoint")
        action = RemoteAction("validate_after_sale_form", config)
        call = action._action_call_format(DialogueStateTracker("buyer-1", []), Domain.load(str(ROOT / "domain.yml")))
        assert "domain" not in call, endpoints
