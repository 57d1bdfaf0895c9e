"""Start Rasa with the project's safety net installed: `python -m bot.nlu.serve run …` (any rasa command)."""

import sys

from bot.nlu.resilience import install


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
