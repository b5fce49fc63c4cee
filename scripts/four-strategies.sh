#!/usr/bin/env bash
# The training check of the README: fine-tune one model on MLQA-R with each batch strategy at
# equal steps, then evaluate it and the untrained model on all of XQuAD-R (el, ru, th, tr are
# never seen in training). Resumable: a finished training or evaluation is skipped.
#
#   scripts/four-strategies.sh [MODEL] [STEPS] [OUT]
#
# Needs the data in --data-dir form: set LANGMIX_DATA_DIR (e.g. ../shared/data).
set -euo pipefail
MODEL=${1:-offline:multilingual-e5-small@L6}
STEPS=${2:-240}
OUT=${3:-runs/four-strategies}
mkdir -p "$OUT"

if [ ! -f "$OUT/untrained/metrics.json" ]; then
  langmix eval --model "$MODEL" --dataset xquad-r --output-dir "$OUT/untrained"
fi
for sampling in mono cross hybrid random; do
  run="$OUT/$sampling"
  if [ ! -f "$run/summary.json" ]; then
    resume=""
    [ -f "$run/config.json" ] && resume="--resume"
    langmix train --model "$MODEL" --train mlqa-r --sampling "$sampling" --alpha 0.5 \
      --batch-size 32 --max-steps "$STEPS" --seed 0 --freeze-embeddings \
      --save-total-limit 1 --output-dir "$run" --log-batches $resume
  fi
  if [ ! -f "$run/eval/metrics.json" ]; then
    langmix eval --model "$run/model" --dataset xquad-r --output-dir "$run/eval"
  fi
done
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = [("untrained", out / "untrained/metrics.json")] + [
    (s, out / s / "eval/metrics.json") for s in ("mono", "cross", "hybrid", "random")
]
print("| strategy | mAP mono | mAP cross | mAP multi | R@1 cross | rank distance | train ex/s |")
print("|---|---|---|---|---|---|---|")
for name, path in rows:
    m = json.loads(path.read_text())
    summary = path.parent.parent / "summary.json"
    rate = json.loads(summary.read_text())["examples_per_s"] if summary.exists() else "-"
    print(f"| {name} | {m['map']['mono']:.4f} | {m['map']['cross']:.4f} | {m['map']['multi']:.4f} "
          f"| {m['recall']['cross@1']:.4f} | {m['rank_distance']:.1f} | {rate} |")
PY
