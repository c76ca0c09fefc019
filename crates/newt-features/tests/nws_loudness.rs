//! The NEWT authors' loudness: offline against their numbers, streaming against offline.

use newt_features::nws_loudness::{NWS_SILENCE_DB, NWS_STREAM_FLOOR_DBFS};
use newt_features::{
    ControlExtractor, FeatureError, LoudnessMeasure, NwsLoudnessMeter, PitchConfig,
    extract_controls, extract_controls_with, nws_loudness_db, nws_normalised, track_pitch,
};

const SR: u32 = 16_000;
const HOP: usize = 128;

/// `sine` of `shared/reference/nws/tools/loudness_offsets.py`:
/// `(amp * np.sin(2 * np.pi * f * t)).astype(np.float32)`, `t = arange(secs * SR) / SR`.
fn sine(f: f64, amp: f64, secs: f64) -> Vec<f32> {
    (0..(secs * SR as f64) as usize)
        .map(|i| {
            let t = i as f64 / SR as f64;
            (amp * (std::f64::consts::TAU * f * t).sin()) as f32
        })
        .collect()
}

/// `harmonic_tone` of `loudness_offsets.py`: harmonics `k = 1 .. int(SR / 2 / f0) - 1`
/// with amplitude `1 / k`, scaled to a peak of `amp_peak`.
fn harmonic_tone(f0: f64, amp_peak: f64, secs: f64) -> Vec<f32> {
    let n = (secs * SR as f64) as usize;
    let kmax = (SR as f64 / 2.0 / f0) as usize;
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 / SR as f64;
            (1..kmax).fold(0.0, |acc, k| {
                acc + (std::f64::consts::TAU * k as f64 * f0 * t).sin() / k as f64
            })
        })
        .collect();
    let peak = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    y.iter().map(|v| (amp_peak * v / peak) as f32).collect()
}

fn cat(parts: &[&[f32]]) -> Vec<f32> {
    parts.concat()
}

fn median(v: &[f32]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The "steady frames" of `loudness_offsets.py`: `np.median(la[:n][part])` with
/// `n = min(1 + len // 128, ceil(len / 128))` and `part` a Python slice `start:stop`
/// (`stop` negative counts from the end).
fn steady_median(loud_db: &[f32], len: usize, start: usize, stop: isize) -> f64 {
    let n = loud_db.len().min(len.div_ceil(HOP));
    let end = if stop < 0 {
        (n as isize + stop) as usize
    } else {
        stop as usize
    };
    median(&loud_db[start..end])
}

#[test]
fn offline_reproduces_the_authors_numbers() {
    let fs1k = sine(1000.0, 1.0, 1.0);
    let a440 = sine(440.0, 0.1, 1.0);
    let harm = harmonic_tone(440.0, 0.5, 1.0);
    let zeros = vec![0.0f32; SR as usize];
    // (name, signal, frame slice, authors_normalised): the expected values are the
    // `authors_normalised` entries of shared/reference/nws/features_offsets.json, made by
    // shared/reference/nws/tools/loudness_offsets.py running the authors'
    // `extract_perceptual_loudness` (librosa 0.8.0 stft semantics).
    let cases: [(&str, Vec<f32>, usize, isize, f64); 9] = [
        (
            "fullscale_1kHz_sine_alone",
            fs1k.clone(),
            20,
            -20,
            0.005554580595344305,
        ),
        (
            "minus20dBFS_440Hz_sine_alone",
            a440.clone(),
            20,
            -20,
            0.014712238684296608,
        ),
        (
            "minus20dBFS_1kHz_sine_alone",
            sine(1000.0, 0.1, 1.0),
            20,
            -20,
            0.005554580595344305,
        ),
        (
            "file_both__part_fullscale_1kHz",
            cat(&[&fs1k, &a440]),
            20,
            105,
            0.005554580595344305,
        ),
        (
            "file_both__part_minus20dBFS_440Hz",
            cat(&[&fs1k, &a440]),
            145,
            -20,
            0.006747436709702015,
        ),
        (
            "harmonic_440Hz_1overk_peak0.5_alone",
            harm.clone(),
            20,
            -20,
            0.1439133584499359,
        ),
        (
            "file_harmonic_then_sine__part_minus20dBFS_440Hz_sine",
            cat(&[&harm, &a440]),
            145,
            -20,
            0.010374260134994984,
        ),
        (
            "file_sine_then_zeros__part_zeros",
            cat(&[&a440, &zeros]),
            145,
            -20,
            0.0,
        ),
        (
            "silence_alone_whole_file_zeros",
            zeros.clone(),
            20,
            -20,
            1.0,
        ),
    ];
    let mut worst = 0.0f64;
    for (name, signal, start, stop, want) in cases {
        let l = nws_loudness_db(&signal, SR, HOP).unwrap();
        assert_eq!(l.len(), 1 + signal.len() / HOP, "{name}");
        let got_db = steady_median(&l, signal.len(), start, stop);
        let got = (got_db + 80.0) / 80.0;
        let err = (got - want).abs();
        println!(
            "{name:55} authors {want:.9} rust {got:.9}  |err| {err:.3e} (normalised) = {:.3e} dB",
            80.0 * err
        );
        assert!(err < 1e-3, "{name}: {got} vs {want}");
        worst = worst.max(err);
    }
    println!(
        "largest |error|: {worst:.3e} normalised, {:.3e} dB",
        80.0 * worst
    );
}

#[test]
fn short_signals_follow_numpy_reflect_padding() {
    // Expected: a numpy port of the authors' loudness (`authors_loudness_port` of
    // shared/reference/nws/tools/loudness_offsets.py, np.pad(..., mode="reflect"),
    // complex64 spectrum), in dB, on
    // `(0.3 cos(2 pi 440 t / SR + 0.3) + 0.05 sin(2 pi 3000 t / SR)).astype(float32)`.
    let cases: [(usize, &[f64]); 9] = [
        (1, &[-79.699844]),
        (2, &[-79.505096]),
        (5, &[-78.689796]),
        (100, &[-57.383812]),
        (300, &[-53.904293, -52.893105, -54.938911]),
        (511, &[-55.203201, -56.48671, -59.861523, -57.145905]),
        (
            512,
            &[-54.961273, -56.27317, -59.932091, -63.352367, -63.274784],
        ),
        (
            513,
            &[-54.74749, -56.19418, -61.339546, -56.713341, -55.283131],
        ),
        (
            700,
            &[
                -55.11121, -56.377087, -60.983204, -64.411011, -60.379501, -58.366524,
            ],
        ),
    ];
    let mut worst = 0.0f64;
    for (len, want) in cases {
        let y: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f64;
                (0.3 * (std::f64::consts::TAU * 440.0 * t / SR as f64 + 0.3).cos()
                    + 0.05 * (std::f64::consts::TAU * 3000.0 * t / SR as f64).sin())
                    as f32
            })
            .collect();
        let got = nws_loudness_db(&y, SR, HOP).unwrap();
        assert_eq!(got.len(), want.len(), "len {len}");
        for (g, w) in got.iter().zip(want) {
            let err = (f64::from(*g) - w).abs();
            worst = worst.max(err);
            assert!(err < 1e-3, "len {len}: {g} vs {w}");
        }
    }
    println!("short signals: largest |error| {worst:.3e} dB");
}

#[test]
fn edge_cases_and_errors() {
    assert_eq!(nws_loudness_db(&[], SR, HOP).unwrap(), Vec::<f32>::new());
    // All digital zeros: the authors' degenerate 0 dB (R falls to amin).
    let z = nws_loudness_db(&vec![0.0; 5000], SR, HOP).unwrap();
    assert_eq!(z.len(), 1 + 5000 / HOP);
    assert!(z.iter().all(|v| *v == 0.0), "{z:?}");
    assert_eq!(nws_normalised(z[0]), 1.0);
    // A lone sample, NaN and Inf: finite, in range.
    for x in [[0.5f32], [f32::NAN], [f32::INFINITY]] {
        let l = nws_loudness_db(&x, SR, HOP).unwrap();
        assert_eq!(l.len(), 1);
        assert!(l[0].is_finite() && (-80.0..=0.0).contains(&l[0]), "{l:?}");
    }
    let mut y = sine(440.0, 0.5, 0.5);
    y[3000] = f32::NAN;
    y[4000] = f32::NEG_INFINITY;
    assert!(
        nws_loudness_db(&y, SR, HOP)
            .unwrap()
            .iter()
            .all(|v| v.is_finite() && (-80.0..=0.0).contains(v))
    );
    // Other hops: 1 + len / hop frames.
    assert_eq!(
        nws_loudness_db(&y, SR, 100).unwrap().len(),
        1 + y.len() / 100
    );
    assert_eq!(
        nws_loudness_db(&y, 44_100, HOP),
        Err(FeatureError::NwsSampleRate(44_100))
    );
    assert_eq!(nws_loudness_db(&y, SR, 0), Err(FeatureError::Hop(0)));
    assert!(NwsLoudnessMeter::new(48_000, HOP).is_err());
    assert!(NwsLoudnessMeter::new(SR, 2048).is_err());
    assert!(NwsLoudnessMeter::with_floor_dbfs(SR, HOP, f32::NAN).is_err());
}

#[test]
fn silence_after_a_sound_reads_minus_80() {
    let y = cat(&[&harmonic_tone(300.0, 0.2, 0.5), &vec![0.0; 16_000]]);
    let l = nws_loudness_db(&y, SR, HOP).unwrap();
    // Frames whose window lies wholly in the zeros (from sample 8000 + 512 on).
    for (f, v) in l.iter().enumerate().skip(8512 / HOP + 1) {
        assert_eq!(*v, NWS_SILENCE_DB, "frame {f}");
    }
    assert!(l[20] > -75.0, "{}", l[20]);
}

#[test]
fn offline_is_scale_invariant() {
    let y = cat(&[
        &harmonic_tone(220.0, 0.4, 0.5),
        &sine(660.0, 0.05, 0.5),
        &vec![0.0; 4000],
    ]);
    let base = nws_loudness_db(&y, SR, HOP).unwrap();
    let largest_difference = |gain: f32| {
        let g: Vec<f32> = y.iter().map(|v| v * gain).collect();
        let l = nws_loudness_db(&g, SR, HOP).unwrap();
        base.iter()
            .zip(&l)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
    };
    let mut worst = 0.0f32;
    for gain in [0.01f32, 0.37, 4.0, 12.5, 1000.0] {
        worst = worst.max(largest_difference(gain));
    }
    println!("scale invariance (gain 0.01 .. 1000): largest difference {worst:.3e} dB");
    assert!(worst < 1e-3, "{worst}");
    // The limit, as in the authors' code: amin (1e-5) is absolute, so once the file's
    // loudest bin R falls below 0.1 (amin + 80 dB), bins under amin no longer reach -80.
    let tiny = largest_difference(1e-4);
    println!("gain 1e-4 (R below 0.1): largest difference {tiny:.3} dB");
    assert!(tiny > 1.0);
}

/// A performance whose loudest part (a rich tone) is in the middle, with quieter tones
/// before and after it.
fn performance() -> Vec<f32> {
    let mut loud = harmonic_tone(440.0, 0.6, 0.75);
    // Fade the loud tone in and out over 20 ms so its edges are no louder than its body.
    let n = loud.len();
    for i in 0..320 {
        let g = i as f32 / 320.0;
        loud[i] *= g;
        loud[n - 1 - i] *= g;
    }
    cat(&[
        &sine(330.0, 0.05, 0.5),
        &loud,
        &sine(523.0, 0.1, 0.75),
        &harmonic_tone(262.0, 0.08, 0.5),
    ])
}

#[test]
fn streaming_agrees_with_offline_once_the_loudest_part_has_passed() {
    let y = performance();
    let offline = nws_loudness_db(&y, SR, HOP).unwrap();
    let mut meter = NwsLoudnessMeter::new(SR, HOP).unwrap();
    assert_eq!(meter.latency(), 512);
    let mut streamed = Vec::new();
    for chunk in y.chunks(97) {
        meter.push(chunk, |v| streamed.push(v));
    }
    assert_eq!(streamed.len(), (y.len() - 512) / HOP + 1);
    // The loud tone spans samples 8000..20000: its loudest frame has been heard by frame
    // 20000 / 128 + 4 at the latest.
    let after = 20_000 / HOP + 4;
    let mut worst = 0.0f32;
    for (f, (s, o)) in streamed.iter().zip(&offline).enumerate().skip(after) {
        worst = worst.max((s - o).abs());
        assert!((s - o).abs() < 1e-4, "frame {f}: streamed {s} offline {o}");
    }
    println!(
        "streaming vs offline after the loudest part: largest difference {worst:.3e} dB over {} frames",
        streamed.len() - after
    );
    // Before the loud part the stream judges the quiet tone against itself: louder.
    let f = 4000 / HOP;
    println!(
        "frame {f}, before the loud part: streamed {} dB, offline {} dB",
        streamed[f], offline[f]
    );
    assert!(streamed[f] > offline[f] + 0.1);
    assert!(streamed.iter().all(|v| (-80.0..=0.0).contains(v)));
    // Reset forgets the reference; the stream then repeats itself exactly.
    meter.reset();
    let floor = meter.floor_magnitude();
    assert_eq!(meter.reference_magnitude(), floor);
    assert!((floor - 256.0 * 10f64.powf(f64::from(NWS_STREAM_FLOOR_DBFS) / 20.0)).abs() < 1e-12);
    let mut again = Vec::new();
    meter.push(&y, |v| again.push(v));
    assert_eq!(again, streamed);
}

#[test]
fn streaming_silence_and_quiet_noise_are_judged_against_the_floor() {
    let mut meter = NwsLoudnessMeter::new(SR, HOP).unwrap();
    let mut out = Vec::new();
    meter.push(&vec![0.0; 8000], |v| out.push(v));
    assert!(out.iter().all(|v| *v == NWS_SILENCE_DB), "{out:?}");
    // -70 dBFS white-ish noise: below the floor reference, so it is not taken as the
    // loudest sound (offline, alone in its file, it reads far higher). Spread over every
    // bin, it still reads about -60 dB against the default floor.
    let mut state = 1u32;
    let noise: Vec<f32> = (0..8000)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state as f32 / u32::MAX as f32 - 0.5) * 2.0 * 10f32.powf(-70.0 / 20.0)
        })
        .collect();
    out.clear();
    meter.push(&noise, |v| out.push(v));
    let offline = nws_loudness_db(&noise, SR, HOP).unwrap();
    let (s, o) = (out[40], offline[40 + 4]);
    println!("-70 dBFS noise: streamed {s} dB, offline alone in its file {o} dB");
    assert!(s < -55.0 && o > -20.0 && s < o - 40.0, "{s} {o}");
    assert_eq!(meter.reference_magnitude(), meter.floor_magnitude());
}

#[test]
fn streaming_never_gives_nan() {
    let mut meter = NwsLoudnessMeter::new(SR, HOP).unwrap();
    let mut y = sine(440.0, 0.5, 0.5);
    for i in (0..y.len()).step_by(301) {
        y[i] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX][i % 4];
    }
    let mut out = Vec::new();
    meter.push(&y, |v| out.push(v));
    meter.push(&[f32::NAN; 3000], |v| out.push(v));
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|v| v.is_finite() && (-80.0..=0.0).contains(v)),
        "{out:?}"
    );
    assert!(meter.reference_magnitude().is_finite());
}

#[test]
fn controls_with_either_measure() {
    let mut y = performance();
    y.truncate(y.len() / HOP * HOP);
    let config = PitchConfig::default();
    // The A-weighted path is unchanged.
    assert_eq!(
        extract_controls_with(&y, config, LoudnessMeasure::AWeightedDbfs).unwrap(),
        extract_controls(&y, config).unwrap()
    );
    // The authors' loudness on the pitch frames: ceil(len / hop), the extra authors'
    // frame dropped (here hop divides len).
    assert_eq!(y.len() % HOP, 0);
    let c = extract_controls_with(&y, config, LoudnessMeasure::NwsDb).unwrap();
    let pitch = track_pitch(&y, config).unwrap();
    let nws = nws_loudness_db(&y, SR, HOP).unwrap();
    assert_eq!(c.len(), pitch.len());
    assert_eq!(c.len() + 1, nws.len());
    for ((f, p), l) in c.iter().zip(&pitch).zip(&nws) {
        assert_eq!(f.loudness_db, *l);
        assert_eq!(f.f0_hz, p.f0_hz);
    }
    // Not a multiple of the hop: the counts agree.
    let short = &y[..y.len() - 5];
    let c = extract_controls_with(short, config, LoudnessMeasure::NwsDb).unwrap();
    assert_eq!(c.len(), short.len().div_ceil(HOP));
    assert_eq!(c.len(), 1 + short.len() / HOP);
    assert!(
        extract_controls_with(&[], config, LoudnessMeasure::NwsDb)
            .unwrap()
            .is_empty()
    );

    // Streaming: the extractor's loudness is the meter's, its pitch the default one's.
    let mut ex = ControlExtractor::with_measure(config, LoudnessMeasure::NwsDb).unwrap();
    assert_eq!(ex.loudness_measure(), LoudnessMeasure::NwsDb);
    let mut plain = ControlExtractor::new(config).unwrap();
    assert_eq!(plain.loudness_measure(), LoudnessMeasure::AWeightedDbfs);
    let mut meter = NwsLoudnessMeter::new(SR, HOP).unwrap();
    let (mut a, mut b, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in y.chunks(200) {
        ex.push(chunk, |f| a.push(f));
        plain.push(chunk, |f| b.push(f));
        meter.push(chunk, |v| m.push(v));
    }
    assert!(a.len() > 100);
    for ((fa, fb), l) in a.iter().zip(&b).zip(&m) {
        assert_eq!(fa.loudness_db, *l);
        assert_eq!(fa.f0_hz, fb.f0_hz);
        assert_eq!(fa.voiced, fb.voiced);
    }
    assert_eq!(ex.latency(), plain.latency());
    assert!(
        ControlExtractor::with_measure(
            PitchConfig {
                sample_rate: 48_000,
                hop: 384,
                ..config
            },
            LoudnessMeasure::NwsDb
        )
        .is_err()
    );
}
