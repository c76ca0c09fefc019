//! Where a model has been: the distribution of the (f0, loudness) controls it was trained
//! on, stored in the model file as a coarse 2-D histogram (pitch in semitones x loudness
//! in dB) plus the quantiles of each axis.
//!
//! A model only knows the pitches and loudnesses it was trained on; outside them it buzzes
//! or goes dull. The map lets the editor show where the live control point sits, lets the
//! engine fold notes into the trained pitch range ("Keep in range"), and lets the live
//! pitch tracker search only the pitches the model can play.
//!
//! The grid is fixed: pitch bins of one semitone from MIDI 12 (C0) to 120 (C9), loudness
//! bins of [`LOUDNESS_BIN_DB`] from the model's silence ([`LoudnessMeasure::floor_db`]) up
//! to its ceiling. Files without a map (format 1 and 2 files written before maps, and
//! imported models whose training data is not at hand) get one estimated from their
//! z-scoring statistics, marked `estimated`.

use serde::{Deserialize, Serialize};

use crate::{LoudnessMeasure, ModelError};

/// Lower edge of the first pitch bin, as a MIDI note number (C0, 16.35 Hz).
pub const PITCH_LO_MIDI: f32 = 12.0;
/// Pitch bins, one semitone each (to C9, 8.4 kHz).
pub const PITCH_BINS: usize = 108;
/// Width of a loudness bin in dB.
pub const LOUDNESS_BIN_DB: f32 = 3.0;
/// The probabilities of the stored per-axis quantiles.
pub const QUANTILES: [f32; 5] = [0.01, 0.05, 0.5, 0.95, 0.99];
/// A control point is inside the range a model knows when it lies in the smallest region
/// of densest bins holding this share of the training frames.
pub const KNOWN_SHARE: f32 = 0.99;

/// The training controls' distribution. Built by [`RangeMap::from_frames`] (training) or
/// [`RangeMap::estimated`] (a model without data); read with [`RangeMap::region`].
#[derive(Clone, Debug, PartialEq)]
pub struct RangeMap {
    measure: LoudnessMeasure,
    loudness_bins: usize,
    /// Frames per bin, pitch-major: `counts[p * loudness_bins + l]`.
    counts: Vec<u32>,
    /// At [`QUANTILES`]: pitch as a (fractional) MIDI note, loudness in dB.
    pub pitch_quantiles_midi: [f32; 5],
    pub loudness_quantiles_db: [f32; 5],
    /// Estimated from the mean and spread of the controls, not counted from data.
    pub estimated: bool,
    /// Per bin: the share of all frames in bins at least as dense as this one after a
    /// 3 x 3 blur (the smallest highest-density region holding the bin), 1 = never seen.
    region: Vec<f32>,
}

/// The stored form (JSON in the file's metadata, key `range_map`): only nonzero bins.
#[derive(Serialize, Deserialize)]
struct Stored {
    pitch_lo_midi: f32,
    pitch_bins: usize,
    loudness_bin_db: f32,
    /// `[pitch bin, loudness bin, frames]` for each nonzero bin.
    counts: Vec<[u32; 3]>,
    pitch_quantiles_midi: [f32; 5],
    loudness_quantiles_db: [f32; 5],
    estimated: bool,
}

/// MIDI note number (fractional) of a frequency in Hz.
pub fn midi_of_hz(f0_hz: f32) -> f32 {
    69.0 + 12.0 * (f0_hz.max(1e-3) / 440.0).log2()
}

/// Frequency in Hz of a (fractional) MIDI note number.
pub fn hz_of_midi(midi: f32) -> f32 {
    440.0 * ((midi - 69.0) / 12.0).exp2()
}

fn loudness_bins(measure: LoudnessMeasure) -> usize {
    ((measure.ceiling_db() - measure.floor_db()) / LOUDNESS_BIN_DB).ceil() as usize
}

impl RangeMap {
    /// Counts voiced frames `(f0 Hz, loudness dB in `measure`)`; unvoiced frames (f0 <= 0)
    /// and non-finite values are skipped. `None` when no frame counts.
    pub fn from_frames(
        frames: impl IntoIterator<Item = (f32, f32)>,
        measure: LoudnessMeasure,
    ) -> Option<Self> {
        let lb = loudness_bins(measure);
        let mut counts = vec![0u32; PITCH_BINS * lb];
        let (mut pitches, mut louds) = (Vec::new(), Vec::new());
        for (f0, loud) in frames {
            if !(f0.is_finite() && f0 > 0.0 && loud.is_finite()) {
                continue;
            }
            let (p, l) = (midi_of_hz(f0), loud);
            if let Some(bin) = bin_of(measure, lb, p, l) {
                counts[bin] = counts[bin].saturating_add(1);
            }
            pitches.push(p);
            louds.push(l);
        }
        if pitches.is_empty() {
            return None;
        }
        Some(Self::with_counts(
            measure,
            counts,
            quantiles(&mut pitches),
            quantiles(&mut louds),
            false,
        ))
    }

    /// A map for a model without data: independent normal distributions in pitch (the
    /// log-normal matching the f0 mean and spread in Hz) and in loudness.
    pub fn estimated(
        f0_mean_hz: f32,
        f0_std_hz: f32,
        loudness_mean_db: f32,
        loudness_std_db: f32,
        measure: LoudnessMeasure,
    ) -> Self {
        let m = f0_mean_hz.max(1.0) as f64;
        let s = f0_std_hz.max(1e-3) as f64;
        let var_ln = (1.0 + (s / m).powi(2)).ln();
        let mu_ln = m.ln() - var_ln / 2.0;
        // Kept on the grid whatever the statistics say (a file's are only checked finite).
        let pitch_top = (PITCH_LO_MIDI as usize + PITCH_BINS) as f64;
        let pitch_mean =
            (midi_of_hz(mu_ln.exp() as f32) as f64).clamp(PITCH_LO_MIDI as f64, pitch_top);
        let pitch_std = (12.0 * var_ln.sqrt() / std::f64::consts::LN_2).clamp(0.5, 48.0);
        let loud_mean =
            (loudness_mean_db as f64).clamp(measure.floor_db() as f64, measure.ceiling_db() as f64);
        let loud_std = (loudness_std_db as f64).clamp(0.5, 60.0);
        let lb = loudness_bins(measure);
        let floor = measure.floor_db() as f64;
        let mass = |lo: f64, hi: f64, mean: f64, std: f64| {
            normal_cdf((hi - mean) / std) - normal_cdf((lo - mean) / std)
        };
        let mut counts = vec![0u32; PITCH_BINS * lb];
        for p in 0..PITCH_BINS {
            let lo = (PITCH_LO_MIDI as f64) + p as f64;
            let mp = mass(lo, lo + 1.0, pitch_mean, pitch_std);
            for l in 0..lb {
                let lo = floor + l as f64 * LOUDNESS_BIN_DB as f64;
                let ml = mass(lo, lo + LOUDNESS_BIN_DB as f64, loud_mean, loud_std);
                counts[p * lb + l] = (1e6 * mp * ml).round() as u32;
            }
        }
        let q = |mean: f64, std: f64| QUANTILES.map(|p| (mean + std * normal_quantile(p)) as f32);
        Self::with_counts(
            measure,
            counts,
            q(pitch_mean, pitch_std),
            q(loud_mean, loud_std),
            true,
        )
    }

    fn with_counts(
        measure: LoudnessMeasure,
        counts: Vec<u32>,
        pitch_quantiles_midi: [f32; 5],
        loudness_quantiles_db: [f32; 5],
        estimated: bool,
    ) -> Self {
        let lb = loudness_bins(measure);
        let region = highest_density_regions(&counts, lb);
        Self {
            measure,
            loudness_bins: lb,
            counts,
            pitch_quantiles_midi,
            loudness_quantiles_db,
            estimated,
            region,
        }
    }

    /// The loudness measure of the loudness axis.
    pub fn measure(&self) -> LoudnessMeasure {
        self.measure
    }

    /// `(pitch bins, loudness bins)`.
    pub fn shape(&self) -> (usize, usize) {
        (PITCH_BINS, self.loudness_bins)
    }

    /// Bin `(p, l)`'s pitch span (MIDI) and loudness span (dB).
    pub fn bin_bounds(&self, p: usize, l: usize) -> ([f32; 2], [f32; 2]) {
        let pl = PITCH_LO_MIDI + p as f32;
        let ll = self.measure.floor_db() + l as f32 * LOUDNESS_BIN_DB;
        ([pl, pl + 1.0], [ll, ll + LOUDNESS_BIN_DB])
    }

    /// Frames counted in bin `(p, l)` (0 outside the grid).
    pub fn count(&self, p: usize, l: usize) -> u32 {
        if p < PITCH_BINS && l < self.loudness_bins {
            self.counts[p * self.loudness_bins + l]
        } else {
            0
        }
    }

    /// Frames counted in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| c as u64).sum()
    }

    /// The smallest highest-density region (as a share of the training frames, in
    /// (0, 1]) that holds bin `(p, l)`: small in the heart of the training data, 1 where
    /// the model never went.
    pub fn bin_region(&self, p: usize, l: usize) -> f32 {
        if p < PITCH_BINS && l < self.loudness_bins {
            self.region[p * self.loudness_bins + l]
        } else {
            1.0
        }
    }

    /// [`Self::bin_region`] of the bin holding `(f0 Hz, loudness dB)`; 1 off the grid or
    /// for an unpitched point.
    pub fn region(&self, f0_hz: f32, loudness_db: f32) -> f32 {
        if !(f0_hz.is_finite() && f0_hz > 0.0) {
            return 1.0;
        }
        match bin_of(
            self.measure,
            self.loudness_bins,
            midi_of_hz(f0_hz),
            loudness_db,
        ) {
            Some(bin) => self.region[bin],
            None => 1.0,
        }
    }

    /// Whether `(f0 Hz, loudness dB)` lies inside the region holding [`KNOWN_SHARE`] of
    /// the training frames.
    pub fn knows(&self, f0_hz: f32, loudness_db: f32) -> bool {
        self.region(f0_hz, loudness_db) <= KNOWN_SHARE
    }

    /// The trained pitch range as MIDI notes: the 1st and 99th percentiles.
    pub fn pitch_range_midi(&self) -> (f32, f32) {
        (self.pitch_quantiles_midi[0], self.pitch_quantiles_midi[4])
    }

    /// Folds a pitch (MIDI) by whole octaves into the trained pitch range; a pitch inside
    /// it is returned unchanged. Where the range is narrower than an octave and no octave
    /// lands inside, the octave nearest to it.
    pub fn fold_pitch_midi(&self, midi: f32) -> f32 {
        fold_by_octaves(midi, self.pitch_range_midi())
    }

    pub(crate) fn to_json(&self) -> String {
        let lb = self.loudness_bins;
        let counts = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| [(i / lb) as u32, (i % lb) as u32, c])
            .collect();
        let stored = Stored {
            pitch_lo_midi: PITCH_LO_MIDI,
            pitch_bins: PITCH_BINS,
            loudness_bin_db: LOUDNESS_BIN_DB,
            counts,
            pitch_quantiles_midi: self.pitch_quantiles_midi,
            loudness_quantiles_db: self.loudness_quantiles_db,
            estimated: self.estimated,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    pub(crate) fn from_json(raw: &str, measure: LoudnessMeasure) -> Result<Self, ModelError> {
        let bad = |reason| ModelError::BadMetadata {
            key: "range_map",
            value: raw.chars().take(80).collect(),
            reason,
        };
        let s: Stored = serde_json::from_str(raw).map_err(|_| bad("not a range map"))?;
        let lb = loudness_bins(measure);
        if s.pitch_lo_midi != PITCH_LO_MIDI
            || s.pitch_bins != PITCH_BINS
            || s.loudness_bin_db != LOUDNESS_BIN_DB
        {
            return Err(bad("grid differs from this build's"));
        }
        let mut counts = vec![0u32; PITCH_BINS * lb];
        for [p, l, c] in s.counts {
            let (p, l) = (p as usize, l as usize);
            if p >= PITCH_BINS || l >= lb {
                return Err(bad("bin outside the grid"));
            }
            counts[p * lb + l] = c;
        }
        // Increasing, and near the grid (a margin for estimated maps' tails).
        let plausible = |q: &[f32; 5], lo: f32, hi: f32| {
            q.iter().all(|v| v.is_finite() && (lo..=hi).contains(v)) && q.is_sorted()
        };
        let pitch_top = PITCH_LO_MIDI + PITCH_BINS as f32;
        if !plausible(
            &s.pitch_quantiles_midi,
            PITCH_LO_MIDI - 150.0,
            pitch_top + 150.0,
        ) || !plausible(
            &s.loudness_quantiles_db,
            measure.floor_db() - 200.0,
            measure.ceiling_db() + 200.0,
        ) {
            return Err(bad("quantiles not increasing near the grid"));
        }
        if counts.iter().all(|&c| c == 0) {
            return Err(bad("no frame counted"));
        }
        Ok(Self::with_counts(
            measure,
            counts,
            s.pitch_quantiles_midi,
            s.loudness_quantiles_db,
            s.estimated,
        ))
    }
}

fn bin_of(measure: LoudnessMeasure, lb: usize, midi: f32, loudness_db: f32) -> Option<usize> {
    let p = (midi - PITCH_LO_MIDI).floor();
    let l = ((loudness_db - measure.floor_db()) / LOUDNESS_BIN_DB).floor();
    if !(p.is_finite() && l.is_finite()) || p < 0.0 || l < 0.0 {
        return None;
    }
    let (p, l) = (p as usize, (l as usize).min(lb - 1));
    (p < PITCH_BINS).then_some(p * lb + l)
}

/// Folds `midi` by whole octaves into `[lo, hi]`.
pub fn fold_by_octaves(midi: f32, (lo, hi): (f32, f32)) -> f32 {
    let ordered = lo.is_finite() && hi.is_finite() && lo <= hi;
    if !midi.is_finite() || !ordered || (lo..=hi).contains(&midi) {
        return midi;
    }
    let up = midi + 12.0 * ((lo - midi) / 12.0).ceil().max(0.0);
    let down = midi - 12.0 * ((midi - hi) / 12.0).ceil().max(0.0);
    let candidate = if midi < lo { up } else { down };
    if (lo..=hi).contains(&candidate) {
        return candidate;
    }
    // A range narrower than an octave: the octave of `midi` nearest to its middle.
    let mid = 0.5 * (lo + hi);
    midi + 12.0 * ((mid - midi) / 12.0).round()
}

fn quantiles(values: &mut [f32]) -> [f32; 5] {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    QUANTILES.map(|q| values[((q * (n - 1) as f32).round() as usize).min(n - 1)])
}

/// Per bin, the share of all (blurred) mass in bins at least as dense as it.
fn highest_density_regions(counts: &[u32], lb: usize) -> Vec<f32> {
    let pb = counts.len() / lb.max(1);
    let mut blurred = vec![0.0f64; counts.len()];
    for p in 0..pb {
        for l in 0..lb {
            let mut s = 0.0;
            for dp in p.saturating_sub(1)..=(p + 1).min(pb - 1) {
                for dl in l.saturating_sub(1)..=(l + 1).min(lb - 1) {
                    let w = if dp == p && dl == l { 4.0 } else { 1.0 };
                    s += w * counts[dp * lb + dl] as f64;
                }
            }
            blurred[p * lb + l] = s;
        }
    }
    let total: f64 = blurred.iter().sum();
    let mut order: Vec<usize> = (0..blurred.len()).collect();
    order.sort_by(|&a, &b| blurred[b].total_cmp(&blurred[a]));
    let mut region = vec![1.0f32; blurred.len()];
    let mut cumulative = 0.0;
    let mut i = 0;
    while i < order.len() && blurred[order[i]] > 0.0 {
        // Ties share the region that holds all of them.
        let mut j = i;
        while j < order.len() && blurred[order[j]] == blurred[order[i]] {
            cumulative += blurred[order[j]];
            j += 1;
        }
        for &bin in &order[i..j] {
            region[bin] = (cumulative / total.max(1e-12)).min(1.0) as f32;
        }
        i = j;
    }
    region
}

/// The standard normal CDF (Abramowitz and Stegun 7.1.26 through erf; error < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The standard normal quantile by bisection on [`normal_cdf`].
fn normal_quantile(p: f32) -> f64 {
    let (mut lo, mut hi) = (-10.0f64, 10.0f64);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p as f64 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flute_like() -> RangeMap {
        // Pitches C4..C6 at -40..-20 dB.
        let frames = (0..20_000).map(|i| {
            let p = 60.0 + 24.0 * ((i * 7919) % 1000) as f32 / 1000.0;
            let l = -40.0 + 20.0 * ((i * 104_729) % 1000) as f32 / 1000.0;
            (hz_of_midi(p), l)
        });
        RangeMap::from_frames(frames, LoudnessMeasure::AWeightedDbfs).unwrap()
    }

    #[test]
    fn the_map_knows_where_the_data_was_and_nowhere_else() {
        let map = flute_like();
        assert!(!map.estimated);
        assert_eq!(map.total(), 20_000);
        assert!(map.knows(hz_of_midi(72.0), -30.0));
        assert!(!map.knows(hz_of_midi(36.0), -30.0), "two octaves below");
        assert!(!map.knows(hz_of_midi(72.0), -90.0), "far quieter");
        assert!(!map.knows(0.0, -30.0), "unpitched");
        assert!(map.region(hz_of_midi(72.0), -30.0) < map.region(hz_of_midi(84.5), -21.0));
        let (lo, hi) = map.pitch_range_midi();
        assert!(
            (lo - 60.24).abs() < 0.2 && (hi - 83.76).abs() < 0.2,
            "{lo} {hi}"
        );
    }

    #[test]
    fn the_map_survives_its_stored_form() {
        let map = flute_like();
        let back = RangeMap::from_json(&map.to_json(), map.measure()).unwrap();
        assert_eq!(back, map);
        for bad in [
            "{}",
            r#"{"pitch_lo_midi":12,"pitch_bins":108,"loudness_bin_db":3,"counts":[[200,0,1]],"pitch_quantiles_midi":[1,2,3,4,5],"loudness_quantiles_db":[1,2,3,4,5],"estimated":false}"#,
            r#"{"pitch_lo_midi":12,"pitch_bins":108,"loudness_bin_db":3,"counts":[[20,0,1]],"pitch_quantiles_midi":[5,2,3,4,5],"loudness_quantiles_db":[1,2,3,4,5],"estimated":false}"#,
            r#"{"pitch_lo_midi":12,"pitch_bins":108,"loudness_bin_db":3,"counts":[],"pitch_quantiles_midi":[1,2,3,4,5],"loudness_quantiles_db":[1,2,3,4,5],"estimated":false}"#,
        ] {
            assert!(
                RangeMap::from_json(bad, LoudnessMeasure::AWeightedDbfs).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_estimated_map_centres_on_the_statistics() {
        let map = RangeMap::estimated(440.0, 60.0, -30.0, 6.0, LoudnessMeasure::AWeightedDbfs);
        assert!(map.estimated);
        let median = map.pitch_quantiles_midi[2];
        assert!((median - 68.6).abs() < 0.5, "median {median}");
        assert!((map.loudness_quantiles_db[2] + 30.0).abs() < 1e-3);
        assert!(map.knows(440.0, -30.0));
        assert!(!map.knows(110.0, -30.0));
        // 98% of a normal lies within 2.33 std of its mean.
        let (lo, hi) = map.pitch_range_midi();
        let std_midi = 12.0 * (1.0f32 + (60.0f32 / 440.0).powi(2)).ln().sqrt() / 2f32.ln();
        assert!(((hi - lo) / 2.0 - 2.326 * std_midi).abs() < 0.05);
    }

    #[test]
    fn notes_fold_by_octaves_into_the_trained_range() {
        let range = (60.0, 84.0);
        assert_eq!(fold_by_octaves(72.0, range), 72.0);
        assert_eq!(fold_by_octaves(40.0, range), 64.0);
        assert_eq!(fold_by_octaves(100.0, range), 76.0);
        assert_eq!(fold_by_octaves(59.5, range), 71.5);
        // Narrower than an octave: the nearest octave to its middle.
        assert_eq!(fold_by_octaves(50.0, (64.0, 70.0)), 62.0);
        assert!(fold_by_octaves(f32::NAN, range).is_nan());
    }
}
