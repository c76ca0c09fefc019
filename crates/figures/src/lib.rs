//! PNG figures with plotters, drawn alike for every report in the workspace: line charts
//! with labelled axes, loss curves, log-mel spectrograms and category grids. Text is drawn
//! with the system's DejaVu Sans when present; without it, figures keep their data and drop
//! their labels (plotters' bitmap backend has no built-in font).

pub use plotters;

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

static FONT: Once = Once::new();

/// Registers DejaVu Sans as the "sans-serif" family once, if the system has it.
pub fn register_font() -> bool {
    const PATHS: [&str; 2] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let mut ok = false;
    FONT.call_once(|| {
        for p in PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                ok =
                    plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok();
                break;
            }
        }
    });
    ok || PATHS.iter().any(|p| Path::new(p).exists())
}

/// The training loss (smoothed over 25 steps) and the held-out loss against steps; both
/// series are `(step, loss)`.
pub fn loss_curve(
    path: &Path,
    title: &str,
    train: &[(usize, f32)],
    valid: &[(usize, f32)],
) -> anyhow::Result<()> {
    let text = register_font();
    let smooth: Vec<(f64, f64)> = train
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let from = i.saturating_sub(24);
            let w = &train[from..=i];
            (
                train[i].0 as f64,
                w.iter().map(|v| v.1 as f64).sum::<f64>() / w.len() as f64,
            )
        })
        .collect();
    let valid: Vec<(f64, f64)> = valid.iter().map(|(s, v)| (*s as f64, *v as f64)).collect();
    let max_step = smooth.last().map_or(1.0, |v| v.0).max(1.0);
    let values = smooth.iter().chain(&valid).map(|v| v.1);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root);
    chart
        .margin(20)
        .x_label_area_size(if text { 40 } else { 5 })
        .y_label_area_size(if text { 60 } else { 5 });
    if text {
        chart.caption(title, ("sans-serif", 22));
    }
    let mut chart = chart.build_cartesian_2d(0.0..max_step, (lo * 0.95)..(hi * 1.05))?;
    if text {
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("multi-resolution STFT loss")
            .draw()?;
    } else {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0)
            .draw()?;
    }
    let train = chart.draw_series(LineSeries::new(smooth, &BLUE))?;
    if text {
        train
            .label("training (25-step mean)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    }
    let held = chart.draw_series(LineSeries::new(valid.clone(), RED.stroke_width(2)))?;
    if text {
        held.label("held-out")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    chart.draw_series(valid.iter().map(|p| Circle::new(*p, 4, RED.filled())))?;
    if text {
        draw_legend(&mut chart)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The legend box of every figure: the labelled series, on a translucent white box.
pub fn draw_legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Log-mel spectrograms stacked top to bottom, one panel per `(label, frames)`, on one
/// colour scale (the real recording's range: 80 dB below its peak, in log power).
pub fn spectrograms(
    path: &Path,
    title: &str,
    panels: &[(&str, &[Vec<f64>])],
) -> anyhow::Result<()> {
    let text = register_font();
    let (w, panel_h) = (1000u32, 180u32);
    let top = if text { 40 } else { 0 };
    let root =
        BitMapBackend::new(path, (w, top + panel_h * panels.len() as u32)).into_drawing_area();
    root.fill(&BLACK)?;
    if text {
        root.titled(title, ("sans-serif", 22).into_font().color(&WHITE))?;
    }
    let peak = panels
        .first()
        .map(|p| {
            p.1.iter()
                .flatten()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .unwrap_or(0.0);
    // 80 dB of power is ln(1e8) = 18.4 in natural-log units.
    let floor = peak - 18.4;
    let (_, body) = root.split_vertically(top);
    for (area, (label, frames)) in body.split_evenly((panels.len(), 1)).iter().zip(panels) {
        let bands = frames.first().map_or(1, Vec::len);
        let n = frames.len().max(1);
        let (pw, ph) = area.dim_in_pixel();
        let left = if text { 130 } else { 0 };
        let cw = (pw.saturating_sub(left)) as f64 / n as f64;
        let ch = ph as f64 / bands as f64;
        for (t, frame) in frames.iter().enumerate() {
            for (b, &v) in frame.iter().enumerate() {
                let level = ((v - floor) / (peak - floor)).clamp(0.0, 1.0);
                let color = ViridisRGB::get_color(level);
                let x0 = left as i32 + (t as f64 * cw) as i32;
                let x1 = left as i32 + ((t + 1) as f64 * cw).ceil() as i32;
                let y1 = ph as i32 - (b as f64 * ch) as i32;
                let y0 = ph as i32 - ((b + 1) as f64 * ch).ceil() as i32;
                area.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))?;
            }
        }
        if text {
            area.draw(&Text::new(
                label.to_string(),
                (8, ph as i32 / 2 - 8),
                ("sans-serif", 16).into_font().color(&WHITE),
            ))?;
        }
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Square matrices of categories side by side (`columns` per row), one panel per
/// `(label, cells)`: category 0 is white, 1 dark blue, and every higher category one of
/// eight light colours in turn (so neighbouring regions differ).
pub fn category_grids(
    path: &Path,
    title: &str,
    columns: usize,
    panels: &[(String, Vec<Vec<usize>>)],
) -> anyhow::Result<()> {
    const LIGHT: [RGBColor; 8] = [
        RGBColor(253, 174, 97),
        RGBColor(166, 217, 106),
        RGBColor(171, 217, 233),
        RGBColor(244, 165, 130),
        RGBColor(194, 165, 207),
        RGBColor(255, 237, 111),
        RGBColor(128, 205, 193),
        RGBColor(247, 129, 191),
    ];
    let text = register_font();
    let rows = panels.len().div_ceil(columns.max(1));
    let (cell, label_h, top) = (240u32, if text { 30 } else { 0 }, if text { 40 } else { 0 });
    let root = BitMapBackend::new(
        path,
        (cell * columns as u32, top + (cell + label_h) * rows as u32),
    )
    .into_drawing_area();
    root.fill(&WHITE)?;
    if text {
        root.titled(title, ("sans-serif", 22))?;
    }
    let (_, body) = root.split_vertically(top);
    for (area, (label, cells)) in body.split_evenly((rows, columns)).iter().zip(panels) {
        let n = cells.len().max(1);
        let (pw, ph) = area.dim_in_pixel();
        let side = pw.min(ph.saturating_sub(label_h)).saturating_sub(16) as f64;
        let step = side / n as f64;
        let x_off = ((pw as f64 - side) / 2.0) as i32;
        let y_off = label_h as i32;
        for (i, row) in cells.iter().enumerate() {
            for (j, &c) in row.iter().enumerate() {
                let colour = match c {
                    0 => WHITE,
                    1 => RGBColor(33, 64, 154),
                    k => LIGHT[(k - 2) % LIGHT.len()],
                };
                let x0 = x_off + (j as f64 * step) as i32;
                let y0 = y_off + (i as f64 * step) as i32;
                let x1 = x_off + ((j + 1) as f64 * step).ceil() as i32;
                let y1 = y_off + ((i + 1) as f64 * step).ceil() as i32;
                area.draw(&Rectangle::new([(x0, y0), (x1, y1)], colour.filled()))?;
            }
        }
        area.draw(&Rectangle::new(
            [(x_off, y_off), (x_off + side as i32, y_off + side as i32)],
            BLACK.stroke_width(1),
        ))?;
        if text {
            area.draw(&Text::new(
                label.clone(),
                (x_off, 6),
                ("sans-serif", 16).into_font(),
            ))?;
        }
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One curve of [`line_chart`]: solid with point markers, or dashed without.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Palette index; None takes the curve's position.
    pub colour: Option<usize>,
}

/// An axis of [`line_chart`]: its title, and whether values are drawn on a log2 scale
/// (ticks then show the values, 1, 2, 4, ...).
pub struct Axis<'a> {
    pub desc: &'a str,
    pub log2: bool,
    /// Fixed `(lo, hi)` in data units, or None to fit the data.
    pub range: Option<(f64, f64)>,
}

/// Curves on shared axes, one colour each, with a legend.
pub fn line_chart(
    path: &Path,
    title: &str,
    x: Axis<'_>,
    y: Axis<'_>,
    curves: &[Curve],
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    draw_line_panel(&root, title, &x, &y, curves)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One panel of [`line_charts`]: a titled line chart.
pub struct Panel<'a> {
    pub title: String,
    pub x: Axis<'a>,
    pub y: Axis<'a>,
    pub curves: Vec<Curve>,
}

/// Line charts side by side in rows of `columns`, under one title.
pub fn line_charts(
    path: &Path,
    title: &str,
    columns: usize,
    panels: &[Panel<'_>],
) -> anyhow::Result<()> {
    let text = register_font();
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (600 * columns as u32, 420 * rows as u32 + 50);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let body = if text {
        root.titled(title, ("sans-serif", 26))?
    } else {
        root.clone()
    };
    for (area, panel) in body.split_evenly((rows, columns)).iter().zip(panels) {
        draw_line_panel(area, &panel.title, &panel.x, &panel.y, &panel.curves)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn draw_line_panel<DB>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x: &Axis<'_>,
    y: &Axis<'_>,
    curves: &[Curve],
) -> anyhow::Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let text = register_font();
    let to = |axis: &Axis<'_>, v: f64| if axis.log2 { v.max(1e-12).log2() } else { v };
    let fit = |axis: &Axis<'_>, values: &mut dyn Iterator<Item = f64>| -> (f64, f64) {
        if let Some((lo, hi)) = axis.range {
            return (to(axis, lo), to(axis, hi));
        }
        // Non-finite values (and non-positive ones on a log axis) cannot be placed.
        let (lo, hi) = values
            .filter(|v| v.is_finite() && (!axis.log2 || *v > 0.0))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = match (lo.is_finite(), axis.log2) {
            (true, _) => (lo, hi),
            (false, false) => (0.0, 1.0),
            (false, true) => (1.0, 2.0),
        };
        let pad = 0.05 * (hi - lo).max(1e-9);
        (
            to(axis, lo) - if axis.log2 { 0.2 } else { pad },
            to(axis, hi) + if axis.log2 { 0.2 } else { pad },
        )
    };
    let (x0, x1) = fit(
        x,
        &mut curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)),
    );
    let (y0, y1) = fit(
        y,
        &mut curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)),
    );
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(20)
        .x_label_area_size(if text { 45 } else { 5 })
        .y_label_area_size(if text { 70 } else { 5 });
    if text {
        builder.caption(title, ("sans-serif", 22));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
    let label = |log2: bool, span: f64| {
        move |v: &f64| {
            if log2 {
                let value = 2f64.powf(*v);
                if value < 0.01 {
                    format!("{value:.0e}")
                } else if value >= 10.0 || (value - value.round()).abs() < 1e-6 {
                    format!("{value:.0}")
                } else {
                    format!("{value:.2}")
                }
            } else if span > 10.0 {
                format!("{v:.0}")
            } else {
                // Enough decimals to tell about five ticks apart (at least two).
                let decimals = (-(span / 5.0).log10()).ceil().max(2.0) as usize;
                format!("{v:.decimals$}")
            }
        }
    };
    let (fx, fy) = (label(x.log2, x1 - x0), label(y.log2, y1 - y0));
    if text {
        chart
            .configure_mesh()
            .x_desc(x.desc)
            .y_desc(y.desc)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .draw()?;
    } else {
        chart.configure_mesh().x_labels(0).y_labels(0).draw()?;
    }
    for (i, curve) in curves.iter().enumerate() {
        let colour = Palette99::pick(curve.colour.unwrap_or(i)).to_rgba();
        let points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|(a, b)| (to(x, *a), to(y, *b)))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        let style = colour.stroke_width(2);
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))?;
        let drawn = if curve.dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 8, 6, style))?
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style))?
        };
        if text {
            drawn
                .label(curve.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    if text {
        draw_legend(&mut chart)?;
    }
    Ok(())
}

/// For a report's regeneration test: `binary report --results RESULTS --out TEMP` writes
/// the same REPORT.md and figures as are committed in `results` (see
/// [`assert_same_report`]); `fix` is the command that regenerates them.
pub fn assert_report_regenerates(binary: &str, results: &Path, fix: &str) {
    let name = Path::new(binary)
        .file_name()
        .map_or("report".into(), |n| n.to_string_lossy().into_owned());
    let out = std::env::temp_dir().join(format!("{name}-report-{}", std::process::id()));
    let status = std::process::Command::new(binary)
        .arg("report")
        .arg("--results")
        .arg(results)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("running {binary}: {e}"));
    assert!(status.success(), "{binary} report failed");
    assert_same_report(&out, results, fix);
    let _ = std::fs::remove_dir_all(&out);
}

/// For a report's regeneration test: `written` (a folder a report command has just written)
/// holds the same REPORT.md as `committed`, byte for byte, and, where the font the committed
/// figures were drawn with is present, the same PNG figures. `fix` is the command that
/// regenerates the committed report, named in the failure.
///
/// Panics, naming the stale file, when they differ (it is a test's assertion).
pub fn assert_same_report(written: &Path, committed: &Path, fix: &str) {
    let read = |path: &Path| {
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    };
    assert!(
        read(&written.join("REPORT.md")) == read(&committed.join("REPORT.md")),
        "{}/REPORT.md is stale: run `{fix}`",
        committed.display()
    );
    let figures = |dir: &Path| -> Vec<std::path::PathBuf> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("a folder entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "png"))
            .collect();
        paths.sort();
        paths
    };
    // A committed figure the report no longer draws is stale too.
    for path in figures(committed) {
        let name = path.file_name().expect("a file name");
        assert!(
            written.join(name).exists(),
            "{} is no longer drawn: delete it",
            path.display()
        );
    }
    if !register_font() {
        return;
    }
    for path in figures(written) {
        let name = path.file_name().expect("a file name");
        assert!(
            read(&path) == read(&committed.join(name)),
            "{}/{} is stale: run `{fix}`",
            committed.display(),
            name.to_string_lossy()
        );
    }
}
