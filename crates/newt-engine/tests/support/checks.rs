//! The signal measurements of `support` checked on known tones. Only `contract.rs`
//! includes this file, so the checks run once.

use crate::support::{cents, fundamental_hz};

#[test]
fn does_not_jump_an_octave_on_a_weak_fundamental() {
    let sr = 16_000.0;
    let f = 440.0;
    let x: Vec<f32> = (0..16_000)
        .map(|i| {
            let w = std::f64::consts::TAU * f * i as f64 / sr;
            (0.3 * w.sin() + (2.0 * w).sin() + 0.5 * (3.0 * w + 0.3).sin()) as f32
        })
        .collect();
    assert!(cents(fundamental_hz(&x, sr), f).abs() < 0.5);
    // A true 220 Hz tone is not mistaken for 440 either.
    let y: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.2 * (std::f64::consts::TAU * 220.0 * i as f64 / sr).sin() as f32)
        .collect();
    assert!(cents(fundamental_hz(&y, sr), 220.0).abs() < 0.5);
}

#[test]
fn measures_known_tones_to_a_fraction_of_a_cent() {
    for (f, sr) in [(440.0, 48_000.0), (97.3, 44_100.0), (1234.5, 96_000.0)] {
        // A tone with a weak fundamental and strong third harmonic.
        let x: Vec<f32> = (0..(sr as usize))
            .map(|i| {
                let t = i as f64 / sr;
                (0.2 * (std::f64::consts::TAU * f * t).sin()
                    + 0.8 * (std::f64::consts::TAU * 3.0 * f * t + 1.0).sin())
                    as f32
            })
            .collect();
        let got = fundamental_hz(&x, sr);
        assert!(cents(got, f).abs() < 0.5, "{f} Hz measured {got}");
    }
}
