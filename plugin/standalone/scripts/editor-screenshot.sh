#!/usr/bin/env bash
# A screenshot of the NEWT editor: the standalone app on a virtual X display (Xvfb),
# playing a MIDI loop through a JACK dummy server so that the live controls and the
# shapers' input ranges show, captured to PNG.
#
#   plugin/standalone/scripts/editor-screenshot.sh [OUT.png]   (default docs/figures/editor.png)
#
# Needs: xvfb, x11-apps (xwd), imagemagick (convert), libgl1-mesa-dri, jackd2.
OUT=$(realpath -m "${1:-docs/figures/editor.png}")
HEADLESS_LOGS=$(mktemp -d)
source "$(dirname "$0")/headless.sh"
mkdir -p "$(dirname "$OUT")"

start_jack shot
start_midi_loop 192000 187200   # A4 held for 3.9 s of every 4 s (its release fills the gap)
start_display 1100x700
start_standalone "$HEADLESS_LOGS/standalone.log"
sleep 6   # the app starting, its model loading and the note sounding, on a busy machine too
xwd -root -silent >"$HEADLESS_LOGS/screen.xwd"
convert "$HEADLESS_LOGS/screen.xwd" -trim +repage "$OUT"
echo "wrote $OUT"
