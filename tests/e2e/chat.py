"""Talk to the running Rasa server through its REST channel, as a scripted buyer would."""

import requests


class Buyer:
    def __init__(self, rasa_url: str, sender: str) -> None:
        self.url = f"{rasa_url}/webhooks/rest/webhook"
        self.sender = sender

    def says(self, text: str) -> list[dict]:
        response = requests.post(self.url, json={"sender": self.sender, "message": text}, timeout=60)
        response.raise_for_status()
        return response.json()

    def sends(self, text: str) -> tuple[int, list[dict]]:
        """The status and the answer, whatever the status (503: a message not handled, with an apology)."""
        response = requests.post(self.url, json={"sender": self.sender, "message": text}, timeout=60)
        return response.status_code, response.json()


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def buttons(replies: list[dict]) -> list[dict]:
    return [b for r in replies for b in r.get("buttons", [])]
