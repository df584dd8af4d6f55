#!/usr/bin/env bash
# Trains the bundled models and writes their model cards, exactly as they are in the repo.
#
#   pretrained_models/build.sh [NAME ...]     # default: every folder with a config.yaml
#   STAGE=train pretrained_models/build.sh    # only train (chain_tqe into experiments_outputs/pretrained/NAME)
#   STAGE=card  pretrained_models/build.sh    # only (re)write the cards from those runs
#
# Training is by steps (training.max_steps), so the same config and seed give the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TEXTZOO:-target/release/textzoo}
STAGE=${STAGE:-all}
if [ $# -gt 0 ]; then names="$*"; else
  names=$(for c in pretrained_models/*/config.yaml; do basename "$(dirname "$c")"; done)
fi
for n in $names; do
  run=experiments_outputs/pretrained/$n
  if [ "$STAGE" != card ]; then
    if [ -e "$run" ]; then echo "$run exists: remove it to retrain $n" >&2; exit 2; fi
    "$BIN" --config-path "pretrained_models/$n" --config-name config.yaml "hydra.run.dir=$run"
  fi
  if [ "$STAGE" != train ]; then
    "$BIN" model-card "$run" -o "pretrained_models/$n"
  fi
done
