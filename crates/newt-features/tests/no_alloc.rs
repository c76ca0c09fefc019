//! The streaming extractors never allocate after construction.

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use newt_features::{ControlExtractor, PitchConfig};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn streaming_controls_never_allocate() {
    let mut ex = ControlExtractor::new(PitchConfig::default()).unwrap();
    let x: Vec<f32> = (0..32_000).map(|i| (i as f32 * 0.17).sin() * 0.3).collect();
    let mut frames = 0;
    for block in x.chunks(333) {
        assert_no_alloc(|| ex.push(block, |_| frames += 1));
    }
    assert!(frames > 200);
}

#[test]
fn streaming_nws_loudness_never_allocates() {
    use newt_features::{LoudnessMeasure, NwsLoudnessMeter};
    let mut meter = NwsLoudnessMeter::new(16_000, 128).unwrap();
    let mut x: Vec<f32> = (0..32_000).map(|i| (i as f32 * 0.07).sin() * 0.5).collect();
    x[5000] = f32::NAN;
    x[9000] = f32::INFINITY;
    let mut frames = 0;
    for block in x.chunks(333) {
        assert_no_alloc(|| meter.push(block, |_| frames += 1));
    }
    assert_no_alloc(|| meter.reset());
    assert!(frames > 200);

    let mut ex =
        ControlExtractor::with_measure(PitchConfig::default(), LoudnessMeasure::NwsDb).unwrap();
    let mut frames = 0;
    for block in x.chunks(333) {
        assert_no_alloc(|| ex.push(block, |_| frames += 1));
    }
    assert!(frames > 200);
}
