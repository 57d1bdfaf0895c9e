"""Start Rasa with the project's safety net, socket.io fix and speed-ups: `python -m bot.nlu.serve run …` (any rasa command)."""

import sys

from bot.logging_setup import install_pii_masking
from bot.nlu import rasa_speedups
from bot.nlu.resilience import fix_socketio_rooms, install


def main() -> None:
    install()
    fix_socketio_rooms()
    rasa_speedups.install()
    install_pii_masking()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
