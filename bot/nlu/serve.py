"""Start Rasa with the project's guards (bot/ops/rasa_guard.py: the answer to a failed action, the socket.io
fix, the speed-ups, masked logs): `python -m bot.nlu.serve run …` (any rasa command). The channels in
credentials.yml import the same module; importing it first applies it before Rasa loads anything."""

import sys

import bot.ops.rasa_guard  # noqa: F401  (applies the guards on import)


def main() -> None:
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
