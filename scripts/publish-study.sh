#!/usr/bin/env bash
# Copy a finished study's report and plots into docs/ so they can be committed:
#   scripts/publish-study.sh runs/cpu-full docs/results-cpu.md
# The report is rebuilt from results.jsonl first; its plot links are rewritten to the copied
# folder (docs/<name>-plots/).
set -euo pipefail
STUDY=$1
TARGET=$2
PLOTS="$(basename "${TARGET%.md}")-plots"
langmix report "$STUDY"
mkdir -p "$(dirname "$TARGET")"
rm -rf "$(dirname "$TARGET")/$PLOTS"
cp -r "$STUDY/plots" "$(dirname "$TARGET")/$PLOTS"
sed "s#](plots/#]($PLOTS/#g" "$STUDY/report.md" > "$TARGET"
echo "wrote $TARGET and $(dirname "$TARGET")/$PLOTS/"
