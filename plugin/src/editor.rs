//! The editor (nice-plug-egui): the loaded model's learned transfer curves with the live
//! input range of each shaper, the live controls, the tracked input in audio-input mode,
//! the model chooser with its load error, and every parameter.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditor, EguiNiceSettings, NiceEguiApp, RepaintNotifier};

use crate::library;
use crate::loader::Shared;
use crate::params::{InputMode, NewtParams};

/// Shaper input range drawn (the FastNEWT table's domain).
const CURVE_DOMAIN: (f32, f32) = (-3.0, 3.0);
/// Points per drawn curve.
const CURVE_POINTS: usize = 96;

const BACKGROUND: Color32 = Color32::from_rgb(22, 24, 28);
const CURVE: Color32 = Color32::from_rgb(120, 200, 255);
// Premultiplied: orange at 25% opacity.
const LIVE_BAND: Color32 = Color32::from_rgba_premultiplied(64, 42, 15, 64);
const ERROR: Color32 = Color32::from_rgb(255, 110, 100);

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
                self.draw_curves(ui, Vec2::new(520.0, 470.0));
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
        ui.horizontal(|ui| {
            ui.label("User file");
            ui.add(egui::TextEdit::singleline(&mut self.path_text).desired_width(330.0));
            if ui.button("Load").clicked() && !self.path_text.trim().is_empty() {
                self.params
                    .user_model
                    .set_path(Some(self.path_text.trim().to_string()));
                setter.begin_set_parameter(&self.params.model);
                setter.set_parameter(&self.params.model, library::USER_FILE_VALUE);
                setter.end_set_parameter(&self.params.model);
            }
        });
        if let Some(e) = error {
            ui.colored_label(ERROR, e);
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
    let midi = (69.0 + 12.0 * (f0_hz / 440.0).log2()).round() as i32;
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
