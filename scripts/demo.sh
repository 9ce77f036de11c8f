#!/usr/bin/env bash
# The main job end to end on the clips in assets/demo: build a voice profile and print its report.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUTOVOICE_DATA_DIR="${AUTOVOICE_DATA_DIR:-$PWD/demo-output/data}"
AV=.venv/bin/autovoice
mkdir -p demo-output

echo "== 1. Build a voice profile from 5 utterances of LibriSpeech speaker 367"
$AV profile create demo-367 assets/demo/367-130732-000[0-4].flac --replace

echo
echo "== 2. Analyse the source clip (LibriSpeech speaker 1688) and plot its F0 contour"
$AV analyze assets/demo/1688-142285-0000.flac --plot demo-output/source-f0.png

echo
echo "Profiles live in $AUTOVOICE_DATA_DIR; the plot is demo-output/source-f0.png."
