#!/usr/bin/env bash
# Every test of the project, in both environments; exits non-zero on the first failing group.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD" TF_CPP_MIN_LOG_LEVEL=3
artifacts="${BOT_TEST_ARTIFACTS:-tests/artifacts}"
mkdir -p "$artifacts"

echo "== training data, domain and stories (rasa data validate)"
.venv/rasa/bin/python -m bot.ops.validate_data

echo "== NLU components (Rasa environment)"
.venv/rasa/bin/python -m pytest -q -p no:cacheprovider --confcutdir=tests/nlu tests/nlu

echo "== conversation tests (rasa test core, every prediction must be right)"
# endpoints.yml reads these from the environment; without them Rasa would create a file named "${BOT_TRACKER_DB}".
BOT_TRACKER_DB="$(realpath "$artifacts")/rasa-test-tracker.db" BOT_ACTION_URL="http://127.0.0.1:9/webhook" \
  .venv/rasa/bin/rasa test core --model models/current.tar.gz --stories tests/stories \
    --fail-on-prediction-errors --out "$artifacts/rasa-test" --no-plot >"$artifacts/rasa-test.log" 2>&1 \
  || { tail -40 "$artifacts/rasa-test.log"; cat "$artifacts/rasa-test/failed_test_stories.yml" 2>/dev/null | head -80; exit 1; }
grep -h "Correct:\|Accuracy:" "$artifacts/rasa-test.log" | head -4 || true

echo "== application, workflow, actions and end-to-end (application environment)"
.venv/app/bin/python -m pytest -q -p no:cacheprovider --timeout=900 --durations=12 tests --ignore=tests/nlu
