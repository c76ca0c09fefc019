//! Rendering on a real SoundFont: the small TimGM6mb General MIDI bank (Debian
//! `timgm6mb-soundfont`, which `.ci/run` installs). The rendered pitch is the pitch
//! played, the ground truth says so frame by frame, and it survives its CSV.

use newt_data::instrument::INSTRUMENTS;
use newt_data::performance::{Exercise, exercise};
use newt_data::render::{
    RENDER_RATE, TRUTH_RATE, load_sound_font, parse_truth_csv, render, truth_csv,
};
use newt_data::tracker::score;
use seeded_rng::SplitMix64;

const SOUND_FONT: &str = "/usr/share/sounds/sf2/TimGM6mb.sf2";

#[test]
fn rendered_phrases_have_the_pitch_their_ground_truth_says() {
    assert!(
        std::path::Path::new(SOUND_FONT).exists(),
        "{SOUND_FONT} is missing: apt-get install timgm6mb-soundfont"
    );
    let sound_font = load_sound_font(SOUND_FONT.as_ref()).unwrap();
    for inst in [INSTRUMENTS[1], INSTRUMENTS[2]] {
        let mut rng = SplitMix64::new(5);
        let performance = exercise(Exercise::LongNotes, &inst, 12.0, &mut rng);
        let r = render(&sound_font, &inst, &performance).unwrap();
        assert_eq!(
            r.audio.len(),
            (performance.duration_s * RENDER_RATE as f64).ceil() as usize
        );
        assert!(r.audio.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        let voiced = r.truth.iter().filter(|f| f.midi != 0).count();
        assert!(voiced > r.truth.len() / 2, "{}: mostly notes", inst.name);
        // Louder where notes sound than in the gaps.
        let mean = |notes: bool| {
            let v: Vec<f32> = r
                .truth
                .iter()
                .filter(|f| (f.midi != 0) == notes)
                .map(|f| f.loudness_db)
                .collect();
            v.iter().sum::<f32>() / v.len().max(1) as f32
        };
        assert!(mean(true) > mean(false) + 10.0, "{}", inst.name);

        let audio16 = newt_features::resample(&r.audio, RENDER_RATE, TRUTH_RATE).unwrap();
        let tally = score(&audio16, &r.truth).unwrap();
        assert!(
            tally.frames() > 500,
            "{}: {} frames scored",
            inst.name,
            tally.frames()
        );
        assert!(
            tally.median_cents() < 15.0 && tally.gross_rate() < 0.05,
            "{}: median {} cents, {} gross",
            inst.name,
            tally.median_cents(),
            tally.gross_rate()
        );

        let back = parse_truth_csv(&truth_csv(&r.truth)).unwrap();
        assert_eq!(back.len(), r.truth.len());
        for (a, b) in back.iter().zip(&r.truth) {
            assert_eq!(a.midi, b.midi);
            assert!((a.f0_hz - b.f0_hz).abs() < 1e-2);
            assert!((a.loudness_db - b.loudness_db).abs() < 1e-2);
        }
    }
}
