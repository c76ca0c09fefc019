#!/usr/bin/env bash
# A screenshot of the NEWT editor: the standalone app on a virtual X display (Xvfb),
# playing a MIDI loop through a JACK dummy server so that the live controls and the
# shapers' input ranges show, captured to PNG.
#
#   plugin/standalone/scripts/editor-screenshot.sh [OUT.png]   (default docs/figures/editor.png)
#
# Needs: xvfb, x11-apps (xwd), imagemagick (convert), libgl1-mesa-dri, jackd2.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-docs/figures/editor.png}
mkdir -p "$(dirname "$OUT")"
cargo build --quiet --release -p newt-standalone
LOGS=$(mktemp -d)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

export JACK_NO_AUDIO_RESERVATION=1
export JACK_DEFAULT_SERVER="newt-shot-$$"
jackd --no-realtime -d dummy -r 48000 -p 512 >"$LOGS/jackd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done
# A4 held for 3 s of every 4 s.
jack_midiseq midiseq 192000 0 69 144000 >"$LOGS/midiseq.log" 2>&1 &
pids+=($!)

DISPLAY_NUM=:$((80 + $$ % 9))
Xvfb "$DISPLAY_NUM" -screen 0 1100x700x24 >"$LOGS/xvfb.log" 2>&1 &
pids+=($!)
sleep 0.5
DISPLAY=$DISPLAY_NUM LIBGL_ALWAYS_SOFTWARE=1 target/release/newt-standalone \
    --backend jack --connect-jack-midi-input midiseq:out >"$LOGS/standalone.log" 2>&1 &
pids+=($!)
sleep 4
DISPLAY=$DISPLAY_NUM xwd -root -silent >"$LOGS/screen.xwd"
convert "$LOGS/screen.xwd" -trim +repage "$OUT"
echo "wrote $OUT"
