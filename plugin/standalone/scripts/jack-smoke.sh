#!/usr/bin/env bash
# Headless run of the standalone app: a JACK dummy server at 48 kHz, the standalone on
# the JACK backend (its editor on a virtual X display), a MIDI loop from jack_midiseq
# (A4 held for 1 s of every 2 s), 4 s of its output recorded with jack_rec, then checked:
# pitched at 440 Hz within 10 cents, not silent.
#
#   plugin/standalone/scripts/jack-smoke.sh [OUT_DIR]      (default target/standalone-jack)
#
# Needs: jackd2, xvfb (Debian packages; .ci/run installs them). Builds the standalone.
OUT=${1:-target/standalone-jack}
mkdir -p "$OUT"
HEADLESS_LOGS=$(cd "$OUT" && pwd)
source "$(dirname "$0")/headless.sh"

start_jack smoke
start_midi_loop 96000 48000
start_display 1024x768
start_standalone "$HEADLESS_LOGS/standalone.log"
port=$(jack_lsp 2>/dev/null | grep -i '^newt:' | grep -i 'output' | grep -vi 'midi' | head -n 1 || true)
if [ -z "$port" ]; then
    echo "the standalone registered no JACK output port" >&2
    jack_lsp >&2 || true
    cat "$HEADLESS_LOGS/standalone.log" >&2 || true
    exit 1
fi
echo "recording $port"
sleep 1
jack_rec -f "$HEADLESS_LOGS/standalone.wav" -d 4 -b 16 "$port" >"$HEADLESS_LOGS/jack_rec.log" 2>&1
cargo xtask pitch "$HEADLESS_LOGS/standalone.wav" --expect-hz 440 --tolerance-cents 10 --min-rms-db -50
