# Shared by the standalone scripts (sourced, not run): a private JACK dummy server, a MIDI
# loop, a virtual X display, and the standalone app on them; everything started here is
# stopped when the calling script exits.
#   start_jack TAG; start_midi_loop LOOP_SAMPLES NOTE_SAMPLES; start_display WxH;
#   start_standalone LOG_FILE
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
cargo build --quiet --release -p newt-standalone

HEADLESS_PIDS=()
stop_headless() {
    for p in "${HEADLESS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_headless EXIT

# A JACK dummy server at 48 kHz, periods of 512, under a name of its own.
start_jack() {
    export JACK_NO_AUDIO_RESERVATION=1
    # One fixed server name: JACK keeps a small registry of servers in /dev/shm, and a
    # new name per run would fill it if a run is ever killed hard.
    export JACK_DEFAULT_SERVER="newt-headless-$1"
    jackd --no-realtime -d dummy -r 48000 -p 512 >"$HEADLESS_LOGS/jackd.log" 2>&1 &
    HEADLESS_PIDS+=($!)
    for _ in $(seq 50); do jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done
}

# `jack_midiseq` client `midiseq`: A4 for NOTE_SAMPLES of every LOOP_SAMPLES.
start_midi_loop() {
    jack_midiseq midiseq "$1" 0 69 "$2" >"$HEADLESS_LOGS/midiseq.log" 2>&1 &
    HEADLESS_PIDS+=($!)
    sleep 0.5
}

# Xvfb on a free-ish display number; exports DISPLAY.
start_display() {
    export DISPLAY=:$((80 + $$ % 19))
    Xvfb "$DISPLAY" -screen 0 "$1x24" >"$HEADLESS_LOGS/xvfb.log" 2>&1 &
    HEADLESS_PIDS+=($!)
    sleep 0.5
}

# The standalone on the JACK backend, its MIDI input connected to the loop; waits for
# its output ports.
start_standalone() {
    LIBGL_ALWAYS_SOFTWARE=1 target/release/newt-standalone \
        --backend jack --connect-jack-midi-input midiseq:out >"$1" 2>&1 &
    HEADLESS_PIDS+=($!)
    # nice-plug names the JACK client after the plugin; outputs are `<client>:output_N`.
    for _ in $(seq 100); do jack_lsp 2>/dev/null | grep -qi '^newt:.*output' && break; sleep 0.1; done
}
