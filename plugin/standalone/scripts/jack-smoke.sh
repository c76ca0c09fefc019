#!/usr/bin/env bash
# Headless run of the standalone app: a JACK dummy server at 48 kHz, the standalone on
# the JACK backend (its editor on a virtual X display), a MIDI loop from jack_midiseq
# (A4 held for 1 s of every 2 s), 4 s of its output recorded with jack_rec, then checked:
# pitched at 440 Hz within 10 cents, not silent.
#
#   plugin/standalone/scripts/jack-smoke.sh [OUT_DIR]      (default target/standalone-jack)
#
# Needs: jackd2, xvfb (Debian packages; .ci/run installs them) and a release build of
# the standalone (`cargo build --release -p newt-standalone`, which this script runs).
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-target/standalone-jack}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cargo build --quiet --release -p newt-standalone

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

export JACK_NO_AUDIO_RESERVATION=1
export JACK_DEFAULT_SERVER="newt-smoke-$$"
jackd --no-realtime -d dummy -r 48000 -p 512 >"$OUT/jackd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done

# The sequencer first, so that the standalone can connect to it when it starts.
jack_midiseq midiseq 96000 0 69 48000 >"$OUT/midiseq.log" 2>&1 &
pids+=($!)
sleep 0.5

DISPLAY_NUM=:$((90 + $$ % 9))
Xvfb "$DISPLAY_NUM" -screen 0 1024x768x24 >"$OUT/xvfb.log" 2>&1 &
pids+=($!)
sleep 0.5
DISPLAY=$DISPLAY_NUM target/release/newt-standalone \
    --backend jack --connect-jack-midi-input midiseq:out >"$OUT/standalone.out" 2>&1 &
pids+=($!)
# nice-plug names the JACK client after the plugin; outputs are `<client>:output_N`.
for _ in $(seq 100); do jack_lsp 2>/dev/null | grep -qi '^newt:.*output' && break; sleep 0.1; done
port=$(jack_lsp 2>/dev/null | grep -i '^newt:' | grep -i 'output' | grep -vi 'midi' | head -n 1 || true)
if [ -z "$port" ]; then
    echo "the standalone registered no JACK output port" >&2
    jack_lsp >&2 || true; cat "$OUT/standalone.out" >&2 || true
    exit 1
fi
echo "recording $port"
sleep 1
jack_rec -f "$OUT/standalone.wav" -d 4 -b 16 "$port" >"$OUT/jack_rec.log" 2>&1
cargo xtask pitch "$OUT/standalone.wav" --expect-hz 440 --tolerance-cents 10 --min-rms-db -50
