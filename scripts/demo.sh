#!/usr/bin/env bash
# The main job end to end on the clips in assets/demo (see assets/demo/ATTRIBUTION.md):
# build a voice profile, convert another speaker's clip and a song into it, measure, speak in it.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUTOVOICE_DATA_DIR="${AUTOVOICE_DATA_DIR:-$PWD/demo-output/data}"
AV="${VENV:-.venv}/bin/autovoice"
OUT=demo-output
mkdir -p "$OUT"

echo "== 1. Voice profile from 5 utterances (39 s) of LibriSpeech speaker 367"
$AV profile create demo-367 assets/demo/367-130732-000[0-4].flac --replace

echo
echo "== 2. Convert a clip of speaker 1688 (male) into that voice (auto key), with its quality report"
$AV convert assets/demo/1688-142285-0000.flac --profile demo-367 --auto-key --separation none \
  -o "$OUT/1688-as-367.wav"

echo
echo "== 3. Convert a song (25 s, full mix): separate the vocal, convert it, remix with the accompaniment"
$AV convert assets/demo/lets_go_fishin_excerpt.ogg --profile demo-367 --auto-key -o "$OUT/song-as-367.wav"

echo
echo "== 4. Source pitch contour and range"
$AV analyze assets/demo/1688-142285-0000.flac --plot "$OUT/source-f0.png"

echo
echo "== 5. Speech in the profile's voice"
$AV tts "Hello! This is AutoVoice, speaking in a voice it learned a minute ago." --profile demo-367 \
  -o "$OUT/tts-as-367.wav"

echo
echo "Results in $OUT/: the converted clip and song with their .report.json, the F0 plot, the speech."
echo "Listen: compare assets/demo/1688-142285-0000.flac with $OUT/1688-as-367.wav."
