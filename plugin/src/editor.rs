//! The editor (nice-plug-egui): the loaded model's learned transfer curves with the live
//! input range of each shaper, its range map (where its training controls lay) with the
//! live control point, the live controls, the tracked input in audio-input mode, the
//! model chooser with its load error, presets, and every parameter.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditor, EguiNiceSettings, NiceEguiApp, RepaintNotifier};

use crate::file_dialog::{DialogOutcome, ModelFileDialog};
use crate::library;
use crate::loader::Shared;
use crate::params::{InputMode, NewtParams};
use crate::presets;

/// Shaper input range drawn (the FastNEWT table's domain).
const CURVE_DOMAIN: (f32, f32) = (-3.0, 3.0);
/// Points per drawn curve.
const CURVE_POINTS: usize = 96;

const BACKGROUND: Color32 = Color32::from_rgb(22, 24, 28);
const CURVE: Color32 = Color32::from_rgb(120, 200, 255);
// Premultiplied: orange at 25% opacity.
const LIVE_BAND: Color32 = Color32::from_rgba_premultiplied(64, 42, 15, 64);
const ERROR: Color32 = Color32::from_rgb(255, 110, 100);
const KNOWN: Color32 = Color32::from_rgb(110, 220, 130);
/// Pitch span of the range map, MIDI notes (C1 to C8).
const MAP_PITCH: (f32, f32) = (24.0, 108.0);
/// The map's shades: regions holding 50%, 90% and 99% of the training frames.
const MAP_SHADES: [(f32, Color32); 3] = [
    (0.5, Color32::from_rgb(70, 130, 200)),
    (0.9, Color32::from_rgb(45, 85, 135)),
    (
        newt_model::range::KNOWN_SHARE,
        Color32::from_rgb(35, 55, 85),
    ),
];

pub fn create(params: Arc<NewtParams>, shared: Arc<Shared>) -> Option<EguiEditor<NewtEditor>> {
    let path_text = params.user_model.get().unwrap_or_default();
    nice_plug_egui::create_egui_editor(
        params.editor_state.clone(),
        RepaintNotifier::new(),
        EguiNiceSettings::new().with_tile("NEWT"),
        NewtEditor {
            params,
            shared,
            gui: None,
            path_text,
            curves: None,
            preset_name: String::new(),
            preset_message: None,
            user_presets: None,
            file_dialog: ModelFileDialog::default(),
            dialog_message: None,
            factory: presets::factory(),
        },
    )
}

/// Sampled transfer curves of one model, each scaled to its own peak.
struct Curves {
    model: usize,
    points: Vec<Vec<f32>>,
}

pub struct NewtEditor {
    params: Arc<NewtParams>,
    shared: Arc<Shared>,
    gui: Option<GuiContext>,
    /// The user model path being typed.
    path_text: String,
    curves: Option<Curves>,
    /// The name a user preset is saved under.
    preset_name: String,
    /// The last preset action's outcome (error = true).
    preset_message: Option<(String, bool)>,
    /// User presets found on disk (name, path), read when the menu first opens.
    user_presets: Option<Vec<(String, std::path::PathBuf)>>,
    /// The user model's file dialog, and what its last use came to when it chose nothing.
    file_dialog: ModelFileDialog,
    dialog_message: Option<&'static str>,
    /// The factory presets (built once).
    factory: Vec<presets::FactoryPreset>,
}

impl NiceEguiApp for NewtEditor {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let status = self.shared.status();
        if let Some(model) = &status.model {
            let key = Arc::as_ptr(model) as usize;
            if self.curves.as_ref().is_none_or(|c| c.model != key) {
                self.curves = Some(sample_curves(model, key));
            }
        }
        ui.painter().rect_filled(ui.max_rect(), 0.0, BACKGROUND);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.heading("NEWT: neural waveshaping");
                self.model_row(ui, &setter, &status.playing, status.error.as_deref());
                self.preset_row(ui, &gui);
                self.draw_curves(ui, Vec2::new(520.0, 270.0));
                self.draw_range_map(ui, status.model.as_deref(), Vec2::new(520.0, 150.0));
            });
            ui.separator();
            ui.vertical(|ui| {
                self.live_readout(ui);
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| self.parameters(ui, &setter));
            });
        });
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(33));
    }
}

impl NewtEditor {
    fn model_row(
        &mut self,
        ui: &mut egui::Ui,
        setter: &ParamSetter,
        playing: &str,
        error: Option<&str>,
    ) {
        ui.horizontal(|ui| {
            ui.label("Model");
            let current = self.params.model.value();
            egui::ComboBox::from_id_salt("model")
                .selected_text(library::choice_name(current))
                .show_ui(ui, |ui| {
                    let mut group = None;
                    for item in library::menu() {
                        if group.is_some_and(|g| g != item.group) {
                            ui.separator();
                        }
                        group = Some(item.group);
                        if ui
                            .selectable_label(item.value == current, item.name)
                            .clicked()
                        {
                            setter.begin_set_parameter(&self.params.model);
                            setter.set_parameter(&self.params.model, item.value);
                            setter.end_set_parameter(&self.params.model);
                        }
                    }
                });
            ui.label(format!("playing: {playing}"));
        });
        let mut load = false;
        match self.file_dialog.poll() {
            Some(DialogOutcome::Chosen(path)) => {
                self.path_text = path.display().to_string();
                self.dialog_message = None;
                load = true;
            }
            Some(DialogOutcome::NoFile) if !ModelFileDialog::portal_announced() => {
                self.dialog_message =
                    Some("no file dialog here (no desktop portal): type the path");
            }
            _ => {}
        }
        ui.horizontal(|ui| {
            ui.label("User file");
            ui.add(egui::TextEdit::singleline(&mut self.path_text).desired_width(270.0));
            let browse =
                ui.add_enabled(!self.file_dialog.is_open(), egui::Button::new("Browse..."));
            if browse.clicked() {
                let folder = std::path::Path::new(self.path_text.trim())
                    .parent()
                    .map(|p| p.to_path_buf());
                self.file_dialog.open(folder);
            }
            load |= ui.button("Load").clicked();
        });
        if load && !self.path_text.trim().is_empty() {
            self.params
                .user_model
                .set_path(Some(self.path_text.trim().to_string()));
            setter.begin_set_parameter(&self.params.model);
            setter.set_parameter(&self.params.model, library::USER_FILE_VALUE);
            setter.end_set_parameter(&self.params.model);
        }
        if let Some(message) = self.dialog_message {
            ui.colored_label(Color32::GRAY, message);
        }
        if let Some(e) = error {
            ui.colored_label(ERROR, e);
        }
    }

    /// The preset menu (factory presets by model, then the user's), and saving the current
    /// state as a user preset. Loading goes through `GuiContext::set_state`, as a host's
    /// state restore does.
    fn preset_row(&mut self, ui: &mut egui::Ui, gui: &GuiContext) {
        let now = presets::Sound::of(&self.params);
        let current = self
            .factory
            .iter()
            .find(|p| p.sound.matches(&now))
            .map_or("(edited)".to_string(), |p| p.name.clone());
        ui.horizontal(|ui| {
            ui.label("Preset");
            let mut chosen: Option<nice_plug::prelude::PluginState> = None;
            egui::ComboBox::from_id_salt("preset")
                .selected_text(current)
                .width(210.0)
                .show_ui(ui, |ui| {
                    let mut model = "";
                    for p in &self.factory {
                        if p.model_name != model {
                            if !model.is_empty() {
                                ui.separator();
                            }
                            model = p.model_name;
                        }
                        if ui
                            .selectable_label(p.sound.matches(&now), &p.name)
                            .clicked()
                        {
                            chosen = Some(p.sound.state());
                            self.preset_message = None;
                        }
                    }
                    let user = self.user_presets.get_or_insert_with(|| {
                        presets::user_folder()
                            .map(|d| presets::list_user(&d))
                            .unwrap_or_default()
                    });
                    if !user.is_empty() {
                        ui.separator();
                    }
                    for (name, path) in user.iter() {
                        if ui.selectable_label(false, name).clicked() {
                            match presets::load_user(path) {
                                Ok(p) => {
                                    chosen = Some(p.state);
                                    self.preset_message = Some((format!("loaded {name}"), false));
                                }
                                Err(e) => self.preset_message = Some((e.to_string(), true)),
                            }
                        }
                    }
                });
            if let Some(state) = chosen {
                gui.set_state(state);
            }
            ui.add(
                egui::TextEdit::singleline(&mut self.preset_name)
                    .hint_text("name")
                    .desired_width(130.0),
            );
            if ui.button("Save").clicked() {
                let saved = presets::user_folder()
                    .and_then(|dir| presets::save_user(&dir, &self.preset_name, gui.get_state()));
                self.preset_message = Some(match saved {
                    Ok(path) => (format!("saved {}", path.display()), false),
                    Err(e) => (e.to_string(), true),
                });
                self.user_presets = None;
            }
        });
        if let Some((message, is_error)) = &self.preset_message {
            let colour = if *is_error { ERROR } else { Color32::GRAY };
            ui.colored_label(colour, message);
        }
    }

    /// The model's range map: its training controls' densest regions over pitch (x) and
    /// loudness (y), the live control point on top (and the tracked input in audio mode),
    /// with a warning when playing leaves the range the model knows.
    fn draw_range_map(&self, ui: &mut egui::Ui, model: Option<&newt_model::NewtModel>, size: Vec2) {
        let (response, painter) = ui.allocate_painter(size, Sense::hover());
        let Some(model) = model else { return };
        let map = &model.meta.range_map;
        let measure = map.measure();
        let q = map.loudness_quantiles_db;
        let (lo_db, hi_db) = (
            (q[0] - 24.0).max(measure.floor_db()),
            (q[4] + 12.0).min(measure.ceiling_db()),
        );
        let plot = Rect::from_min_max(
            response.rect.min + Vec2::new(34.0, 4.0),
            response.rect.max - Vec2::new(4.0, 16.0),
        );
        painter.rect_stroke(
            plot,
            0.0,
            Stroke::new(1.0, Color32::from_gray(60)),
            egui::StrokeKind::Inside,
        );
        let x_of = |midi: f32| {
            plot.left() + (midi - MAP_PITCH.0) / (MAP_PITCH.1 - MAP_PITCH.0) * plot.width()
        };
        // At least a bin tall, whatever quantiles a file brings.
        let span_db = (hi_db - lo_db).max(newt_model::range::LOUDNESS_BIN_DB);
        let y_of = |db: f32| plot.bottom() - (db - lo_db) / span_db * plot.height();
        let (pitch_bins, loud_bins) = map.shape();
        for p in 0..pitch_bins {
            for l in 0..loud_bins {
                let region = map.bin_region(p, l);
                let Some((_, colour)) = MAP_SHADES.iter().find(|(share, _)| region <= *share)
                else {
                    continue;
                };
                let ([p0, p1], [l0, l1]) = map.bin_bounds(p, l);
                let cell =
                    Rect::from_x_y_ranges(x_of(p0)..=x_of(p1), y_of(l1)..=y_of(l0)).intersect(plot);
                if cell.is_positive() {
                    painter.rect_filled(cell, 0.0, *colour);
                }
            }
        }
        // Octave ticks (C) and the loudness span.
        let font = FontId::proportional(10.0);
        for c in (24..=108).step_by(12) {
            let x = x_of(c as f32);
            painter.text(
                Pos2::new(x, plot.bottom() + 1.0),
                Align2::CENTER_TOP,
                format!("C{}", c / 12 - 1),
                font.clone(),
                Color32::GRAY,
            );
        }
        for (db, align) in [(lo_db, Align2::RIGHT_BOTTOM), (hi_db, Align2::RIGHT_TOP)] {
            painter.text(
                Pos2::new(plot.left() - 3.0, y_of(db)),
                align,
                format!("{db:.0}"),
                font.clone(),
                Color32::GRAY,
            );
        }
        painter.text(
            plot.left_top() + Vec2::new(4.0, 2.0),
            Align2::LEFT_TOP,
            if map.estimated {
                "trained range (estimated from the model's statistics)"
            } else {
                "trained range: pitch x loudness (dB)"
            },
            font.clone(),
            Color32::GRAY,
        );
        let t = &self.shared.telemetry;
        let r = Ordering::Relaxed;
        let clamp = |p: Pos2| p.clamp(plot.min, plot.max);
        if self.params.input.value() == InputMode::Audio {
            let f0 = t.input_f0_hz.load(r);
            if f0 > 0.0 {
                let at = Pos2::new(
                    x_of(newt_model::range::midi_of_hz(f0)),
                    y_of(t.input_loudness_db.load(r)),
                );
                painter.circle_stroke(clamp(at), 5.0, Stroke::new(1.0, Color32::LIGHT_GRAY));
            }
        }
        if t.sounding.load(r) {
            let (f0, loud) = (t.f0_hz.load(r), t.loudness_db.load(r));
            let midi = newt_model::range::midi_of_hz(f0);
            let knows = map.knows(f0, loud);
            let colour = if knows { KNOWN } else { ERROR };
            painter.circle_filled(clamp(Pos2::new(x_of(midi), y_of(loud))), 4.5, colour);
            if !knows {
                let (p_lo, p_hi) = map.pitch_range_midi();
                let why = if midi < p_lo {
                    "below the pitches it knows"
                } else if midi > p_hi {
                    "above the pitches it knows"
                } else if loud < q[0] {
                    "quieter than it knows"
                } else if loud > q[4] {
                    "louder than it knows"
                } else {
                    "a pitch and loudness it never played together"
                };
                painter.text(
                    plot.right_top() + Vec2::new(-4.0, 2.0),
                    Align2::RIGHT_TOP,
                    format!("outside the trained range: {why}"),
                    FontId::proportional(12.0),
                    ERROR,
                );
            }
        }
    }

    /// The 64 transfer curves in a grid, each with the band of inputs it sees now.
    fn draw_curves(&self, ui: &mut egui::Ui, size: Vec2) {
        let (response, painter) = ui.allocate_painter(size, Sense::hover());
        let Some(curves) = &self.curves else {
            painter.text(
                response.rect.center(),
                Align2::CENTER_CENTER,
                "no model loaded",
                FontId::proportional(14.0),
                Color32::GRAY,
            );
            return;
        };
        let n = curves.points.len();
        let cols = (n as f32).sqrt().ceil().max(1.0) as usize;
        let rows = n.div_ceil(cols);
        let cell = Vec2::new(size.x / cols as f32, size.y / rows as f32);
        let sounding = self.shared.telemetry.sounding.load(Ordering::Relaxed);
        let (lo, hi) = CURVE_DOMAIN;
        for (c, curve) in curves.points.iter().enumerate() {
            let origin = response.rect.min
                + Vec2::new((c % cols) as f32 * cell.x, (c / cols) as f32 * cell.y);
            let rect = Rect::from_min_size(origin, cell).shrink(2.0);
            painter.rect_stroke(
                rect,
                2.0,
                Stroke::new(1.0, Color32::from_gray(60)),
                egui::StrokeKind::Inside,
            );
            let x_of = |u: f32| rect.left() + (u - lo) / (hi - lo) * rect.width();
            if sounding {
                let [a, b] = self.shared.telemetry.shaper_range(c);
                let (a, b) = (a.clamp(lo, hi), b.clamp(lo, hi));
                if b > a || (b - a).abs() < 1e-6 {
                    let band =
                        Rect::from_x_y_ranges(x_of(a)..=x_of(b).max(x_of(a) + 1.0), rect.y_range());
                    painter.rect_filled(band, 0.0, LIVE_BAND);
                }
            }
            let points: Vec<Pos2> = curve
                .iter()
                .enumerate()
                .map(|(i, &y)| {
                    let u = lo + (hi - lo) * i as f32 / (CURVE_POINTS - 1) as f32;
                    Pos2::new(x_of(u), rect.center().y - 0.45 * rect.height() * y)
                })
                .collect();
            painter.add(egui::Shape::line(points, Stroke::new(1.2, CURVE)));
        }
    }

    fn live_readout(&self, ui: &mut egui::Ui) {
        let t = &self.shared.telemetry;
        let r = Ordering::Relaxed;
        if t.sounding.load(r) {
            let f0 = t.f0_hz.load(r);
            ui.label(format!(
                "f0 {f0:7.1} Hz  {}   loudness {:6.1} dB",
                note_name(f0),
                t.loudness_db.load(r)
            ));
        } else {
            ui.label("silent");
        }
        if self.params.input.value() == InputMode::Audio {
            let f0 = t.input_f0_hz.load(r);
            let confidence = t.input_confidence.load(r);
            ui.label(format!(
                "input: {f0:7.1} Hz  {}   {:6.1} dB",
                note_name(f0),
                t.input_loudness_db.load(r)
            ));
            ui.add(
                egui::ProgressBar::new(confidence.clamp(0.0, 1.0))
                    .desired_width(300.0)
                    .text(format!("pitch confidence {confidence:.2}")),
            );
        }
    }

    fn parameters(&self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = &self.params;
        macro_rules! row {
            ($param:expr) => {
                ui.horizontal(|ui| {
                    ui.add_sized([110.0, 18.0], egui::Label::new($param.name()));
                    ui.add(ParamSlider::for_param(&$param, setter).with_width(140.0));
                });
            };
        }
        ui.label("Play");
        row!(p.input);
        row!(p.voicing);
        row!(p.keep_in_range);
        row!(p.octave);
        row!(p.semitone);
        row!(p.glide);
        row!(p.bend_range);
        row!(p.vibrato);
        row!(p.vibrato_rate);
        ui.label("Envelope");
        row!(p.attack);
        row!(p.decay);
        row!(p.sustain);
        row!(p.release);
        ui.label("Audio input");
        row!(p.loudness_offset);
        row!(p.gate);
        ui.label("Timbre");
        row!(p.shaper_in_scale);
        row!(p.shaper_in_offset);
        row!(p.shaper_out_scale);
        row!(p.balance);
        row!(p.reverb);
        row!(p.gain);
    }
}

/// Each shaper's transfer curve over [`CURVE_DOMAIN`], scaled to its own peak.
fn sample_curves(model: &newt_model::NewtModel, key: usize) -> Curves {
    let (lo, hi) = CURVE_DOMAIN;
    let points = (0..model.meta.n_shapers)
        .map(|c| {
            let ys: Vec<f32> = (0..CURVE_POINTS)
                .map(|i| {
                    let u = lo + (hi - lo) * i as f32 / (CURVE_POINTS - 1) as f32;
                    model.weights.shapers.eval(c, u)
                })
                .collect();
            let peak = ys.iter().fold(1e-6f32, |m, y| m.max(y.abs()));
            ys.iter().map(|y| y / peak).collect()
        })
        .collect();
    Curves { model: key, points }
}

/// "A4", "C#5"... for a frequency in Hz; empty when unpitched.
fn note_name(f0_hz: f32) -> String {
    if !(f0_hz.is_finite() && f0_hz > 0.0) {
        return String::new();
    }
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    let midi = newt_model::range::midi_of_hz(f0_hz).round() as i32;
    format!(
        "{}{}",
        NAMES[midi.rem_euclid(12) as usize],
        midi.div_euclid(12) - 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names() {
        assert_eq!(note_name(440.0), "A4");
        assert_eq!(note_name(261.63), "C4");
        assert_eq!(note_name(0.0), "");
    }

    #[test]
    fn curves_are_sampled_for_every_shaper_and_scaled_to_their_peak() {
        let model = newt_model::NewtModel::seeded(0);
        let c = sample_curves(&model, 1);
        assert_eq!(c.points.len(), model.meta.n_shapers);
        for curve in &c.points {
            assert_eq!(curve.len(), CURVE_POINTS);
            let peak = curve.iter().fold(0.0f32, |m, y| m.max(y.abs()));
            assert!((peak - 1.0).abs() < 1e-5 || peak < 1e-3);
        }
    }
}
