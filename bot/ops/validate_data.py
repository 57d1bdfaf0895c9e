"""`rasa data validate`, failing on every warning but one kind that Rasa cannot know about.

Rasa warns that a response "is not used in any story or rule" when only a custom action or a form
sends it (actions choose among responses by the facts of the request; a form asks for a slot with
`utter_ask_<slot>`), and that an `EXTERNAL_` intent has no training examples (the worker and the
console trigger those through the HTTP API; nobody types them). Such a warning is accepted only if
the response really is named in actions/ code or is a form's question, or the intent really is
handled by a rule; any other warning fails the check.
Runs in the Rasa environment.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNUSED = re.compile(r"The utterance '(utter_[a-z_]+)' is not used in any story or rule")
EXTERNAL = re.compile(r"The intent '(EXTERNAL_[A-Za-z_]+)' is listed in the domain file, but is not found in the NLU")


def used_by_actions(name: str, code: str, form_slots: set[str]) -> bool:
    if name in code or name.removeprefix("utter_ask_") in form_slots:
        return True
    # Status sentences are chosen as f"utter_status_{status}".
    return name.startswith("utter_status_") and "utter_status_{" in code


def main() -> int:
    result = subprocess.run([sys.executable, "-m", "rasa", "data", "validate"], cwd=ROOT, capture_output=True,
                            text=True)
    output = result.stdout + result.stderr
    import yaml

    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "actions").glob("*.py"))
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    form_slots = {slot for form in domain.get("forms", {}).values() for slot in form.get("required_slots", [])}
    rules = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "data" / "rules").glob("*.yml"))
    problems = []
    accepted = 0
    for line in output.splitlines():
        if "UserWarning" not in line and "WARNING" not in line:
            continue
        match = UNUSED.search(line)
        if match and used_by_actions(match.group(1), code, form_slots):
            accepted += 1
            continue
        external = EXTERNAL.search(line)
        if external and f"intent: {external.group(1)}" in rules:
            accepted += 1
            continue
        problems.append(line.strip())
    if result.returncode != 0:
        problems.append(f"rasa data validate exited with {result.returncode}")
    for problem in problems:
        print("validate:", problem)
    print(f"rasa data validate: {len(problems)} problems; {accepted} accepted (responses sent by actions or "
          "forms, EXTERNAL_ intents handled by rules)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
