#!/usr/bin/env bash
# Every test of the project, in both environments; exits non-zero on the first failing group.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD" TF_CPP_MIN_LOG_LEVEL=3
artifacts="${BOT_TEST_ARTIFACTS:-tests/artifacts}"
mkdir -p "$artifacts"

echo "== NLU components and data (Rasa environment)"
.venv/rasa/bin/python -m pytest -q -p no:cacheprovider --confcutdir=tests/nlu tests/nlu

echo "== application, workflow, actions and end-to-end (application environment)"
.venv/app/bin/python -m pytest -q -p no:cacheprovider --timeout=900 tests --ignore=tests/nlu
