//! PNG plots of an evaluation: verification ROC curves, the IJB ROC, the RAF-DB confusion
//! matrix, the age-error histogram and the CelebA per-attribute accuracies. Drawn with
//! plotters into an RGB buffer and encoded with `image`. Text needs a TrueType font: the first
//! of `SWINFACE_PLOT_FONT` and a few common system paths (Debian's fonts-dejavu-core first);
//! without one, plots are drawn without text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use super::analysis::{AgeResult, AttributeResult, ExpressionResult};
use super::bins::VerificationResult;
use super::error::EvalError;
use super::ijbc::IjbResult;

const FONT_FAMILY: &str = "sans-serif";

const FONT_CANDIDATES: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Fonts larger than this are not read.
const MAX_FONT_BYTES: u64 = 64 << 20;

/// Registers a font with plotters once; false when none could be found.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let from_env = std::env::var_os("SWINFACE_PLOT_FONT").map(PathBuf::from);
        let candidates = from_env
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from));
        for path in candidates {
            let fits =
                std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FONT_BYTES);
            let Some(bytes) = fits.then(|| std::fs::read(&path).ok()).flatten() else {
                continue;
            };
            // plotters keeps fonts for the life of the program.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes).is_ok() {
                tracing::debug!("plot font: {}", path.display());
                return true;
            }
        }
        tracing::warn!("no TrueType font found (set SWINFACE_PLOT_FONT): plots have no text");
        false
    })
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().into()
}

/// Series colours (colour-blind safe, Okabe-Ito).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Draws into a white `width x height` canvas and writes it as PNG (atomically).
fn render(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area, bool) -> Result<(), String>,
) -> Result<(), EvalError> {
    let plot_error = |message: String| EvalError::Plot {
        path: path.to_path_buf(),
        message,
    };
    let text = font_available();
    let mut buffer = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(e.to_string()))?;
        draw(&root, text).map_err(plot_error)?;
        root.present().map_err(|e| plot_error(e.to_string()))?;
    }
    let image = image::RgbImage::from_raw(width, height, buffer)
        .ok_or_else(|| plot_error("buffer size".into()))?;
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| plot_error(e.to_string()))?;
    swinface_data::formats::atomic::write_atomic(path, &png)?;
    Ok(())
}

/// Tick label of a log axis: powers of ten only (`1e-4`, `0.01`, `0.1`, `1`).
fn log_tick(v: &f64) -> String {
    let exponent = v.log10();
    if (exponent - exponent.round()).abs() > 1e-6 {
        return String::new();
    }
    match exponent.round() as i32 {
        e if e >= -2 => format!("{}", 10f64.powi(e)),
        e => format!("1e{e}"),
    }
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// ROC curves of the verification sets (fold-averaged, as `calculate_roc` returns them),
/// FPR on a log axis.
pub fn verification_roc(path: &Path, results: &[VerificationResult]) -> Result<(), EvalError> {
    render(path, (800, 600), |root, text| {
        let min_fpr = results
            .iter()
            .flat_map(|r| r.metrics.roc.fpr.iter().copied())
            .filter(|&f| f > 0.0)
            .fold(1e-3f64, f64::min)
            .max(1e-4);
        let x_range = (min_fpr..1.0f64).log_scale();
        let mut builder = ChartBuilder::on(root);
        builder.margin(16);
        if text {
            builder
                .caption("Verification ROC (10-fold mean)", font(24.0))
                .x_label_area_size(45)
                .y_label_area_size(60);
        }
        let mut chart = builder
            .build_cartesian_2d(x_range, 0.0f64..1.0f64)
            .map_err(s)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("False positive rate")
                .x_label_formatter(&log_tick)
                .y_desc("True positive rate")
                .label_style(font(15.0))
                .axis_desc_style(font(17.0));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(s)?;
        for (k, r) in results.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let points: Vec<(f64, f64)> = r
                .metrics
                .roc
                .fpr
                .iter()
                .zip(&r.metrics.roc.tpr)
                .filter(|(f, _)| **f >= min_fpr)
                .map(|(&f, &t)| (f, t))
                .collect();
            let series = chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(s)?;
            if text {
                series
                    .label(format!("{} ({:.2} %)", r.name, 100.0 * r.metrics.accuracy))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
        }
        if text && !results.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(font(15.0))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(s)?;
        }
        Ok(())
    })
}

/// The IJB ROC with the TAR@FAR points marked, FAR on a log axis from 1e-6.
pub fn ijb_roc(path: &Path, result: &IjbResult) -> Result<(), EvalError> {
    render(path, (800, 600), |root, text| {
        let min_fpr = result
            .roc
            .fpr
            .iter()
            .copied()
            .filter(|&f| f > 0.0)
            .fold(1.0f64, f64::min)
            .clamp(1e-6, 1e-1);
        let mut builder = ChartBuilder::on(root);
        builder.margin(16);
        if text {
            builder
                .caption(
                    format!("{} 1:1 verification ROC", display_name(&result.target)),
                    font(24.0),
                )
                .x_label_area_size(45)
                .y_label_area_size(60);
        }
        let mut chart = builder
            .build_cartesian_2d(
                (0.9 * min_fpr.min(1e-6)..1.0f64).log_scale(),
                0.0f64..1.0f64,
            )
            .map_err(s)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("False accept rate")
                .x_label_formatter(&log_tick)
                .y_desc("True accept rate")
                .label_style(font(15.0))
                .axis_desc_style(font(17.0));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(s)?;
        let points: Vec<(f64, f64)> = result
            .roc
            .fpr
            .iter()
            .zip(&result.roc.tpr)
            .filter(|(f, _)| **f > 0.0)
            .map(|(&f, &t)| (f, t))
            .collect();
        chart
            .draw_series(LineSeries::new(points, PALETTE[0].stroke_width(2)))
            .map_err(s)?;
        chart
            .draw_series(
                result
                    .tar_at_far
                    .iter()
                    .map(|&(far, tar)| Circle::new((far, tar), 4, PALETTE[1].filled())),
            )
            .map_err(s)?;
        if text {
            chart
                .draw_series(result.tar_at_far.iter().map(|&(far, tar)| {
                    Text::new(
                        format!("{:.2}", 100.0 * tar),
                        (far, (tar - 0.05).max(0.02)),
                        font(13.0),
                    )
                }))
                .map_err(s)?;
        }
        Ok(())
    })
}

/// `IJBC` -> `IJB-C` (the meta files' prefix is written without the hyphen).
fn display_name(target: &str) -> String {
    match target.strip_prefix("IJB") {
        Some(letter) if letter.len() == 1 => format!("IJB-{letter}"),
        _ => target.to_owned(),
    }
}

/// Linear white -> blue.
fn heat(value: f64) -> RGBColor {
    let v = value.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

/// The RAF-DB confusion matrix, each row normalised by its class count (cell text: the
/// fraction and the count).
pub fn confusion_matrix(path: &Path, result: &ExpressionResult) -> Result<(), EvalError> {
    let classes = result.classes.len();
    render(path, (760, 700), |root, text| {
        let mut builder = ChartBuilder::on(root);
        builder.margin(16);
        if text {
            builder
                .caption("RAF-DB confusion (rows: true class)", font(22.0))
                .x_label_area_size(70)
                .y_label_area_size(100);
        }
        let n = classes as f64;
        let mut chart = builder.build_cartesian_2d(0.0..n, 0.0..n).map_err(s)?;
        let names = result.classes.clone();
        let label = move |v: &f64| -> String {
            let i = v.floor() as usize;
            if (v - v.floor() - 0.5).abs() < 1e-9 {
                names.get(i).map(|s| s.to_string()).unwrap_or_default()
            } else {
                String::new()
            }
        };
        let y_names = result.classes.clone();
        let y_label = move |v: &f64| -> String {
            let i = classes as f64 - v.floor() - 1.0;
            if (v - v.floor() - 0.5).abs() < 1e-9 && i >= 0.0 {
                y_names
                    .get(i as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh();
        if text {
            mesh.x_desc("Predicted class")
                .x_labels(2 * classes + 1)
                .y_labels(2 * classes + 1)
                .x_label_formatter(&label)
                .y_label_formatter(&y_label)
                .label_style(font(14.0))
                .axis_desc_style(font(16.0));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(s)?;
        let confusion = &result.metrics.confusion;
        for (t, row) in confusion.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (p, &count) in row.iter().enumerate() {
                let fraction = if total > 0 {
                    count as f64 / total as f64
                } else {
                    0.0
                };
                let (x0, y0) = (p as f64, (classes - 1 - t) as f64);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                        heat(fraction).filled(),
                    )))
                    .map_err(s)?;
                if text {
                    let colour = if fraction > 0.5 { WHITE } else { BLACK };
                    let style = font(13.0).color(&colour);
                    let lines = [
                        (format!("{fraction:.2}"), y0 + 0.7),
                        (format!("({count})"), y0 + 0.4),
                    ];
                    chart
                        .draw_series(
                            lines
                                .into_iter()
                                .map(|(t, y)| Text::new(t, (x0 + 0.22, y), style.clone())),
                        )
                        .map_err(s)?;
                }
            }
        }
        Ok(())
    })
}

/// Histogram of signed age errors (prediction - label) in 1-year bins, FG-NET and CLAP2015
/// overlaid, as fractions of each set.
pub fn age_errors(path: &Path, sets: &[(&str, &AgeResult)]) -> Result<(), EvalError> {
    render(path, (800, 500), |root, text| {
        let largest = sets
            .iter()
            .flat_map(|(_, r)| r.errors.iter())
            .filter(|e| e.is_finite())
            .fold(5.0f64, |m, e| m.max(e.abs()))
            .min(100.0)
            .ceil();
        let bins = (2.0 * largest) as usize;
        let histograms: Vec<Vec<f64>> = sets
            .iter()
            .map(|(_, r)| {
                let mut h = vec![0.0; bins.max(1)];
                for e in r.errors.iter().filter(|e| e.is_finite()) {
                    let b = ((e + largest).floor().max(0.0) as usize).min(bins.max(1) - 1);
                    h[b] += 1.0;
                }
                let n = r.errors.len().max(1) as f64;
                h.iter().map(|c| c / n).collect()
            })
            .collect();
        let top = histograms.iter().flatten().fold(0.05f64, |m, &v| m.max(v)) * 1.1;
        let mut builder = ChartBuilder::on(root);
        builder.margin(16);
        if text {
            builder
                .caption("Age error (prediction - label)", font(22.0))
                .x_label_area_size(45)
                .y_label_area_size(60);
        }
        let mut chart = builder
            .build_cartesian_2d(-largest..largest, 0.0..top)
            .map_err(s)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("years")
                .y_desc("fraction of images")
                .label_style(font(15.0))
                .axis_desc_style(font(17.0));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(s)?;
        for (k, ((name, result), h)) in sets.iter().zip(&histograms).enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let series = chart
                .draw_series(h.iter().enumerate().map(|(b, &v)| {
                    let x0 = b as f64 - largest;
                    Rectangle::new([(x0 + 0.1, 0.0), (x0 + 0.9, v)], colour.mix(0.55).filled())
                }))
                .map_err(s)?;
            if text {
                series
                    .label(format!("{name} (MAE {:.2})", result.metrics.mae))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.mix(0.55).filled())
                    });
            }
        }
        if text && !sets.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(15.0))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(s)?;
        }
        Ok(())
    })
}

/// Accuracy of each CelebA attribute as horizontal bars, with the mean marked.
pub fn attribute_accuracy(path: &Path, result: &AttributeResult) -> Result<(), EvalError> {
    let count = result.metrics.per_attribute.len();
    render(path, (820, 60 + 22 * count as u32 + 80), |root, text| {
        let low = result
            .metrics
            .per_attribute
            .iter()
            .fold(0.5f64, |m, &v| m.min(v))
            .max(0.0);
        let low = (low * 10.0).floor() / 10.0;
        let mut builder = ChartBuilder::on(root);
        builder.margin(16);
        if text {
            builder
                .caption(
                    format!(
                        "CelebA attribute accuracy (mean {:.2} %)",
                        100.0 * result.metrics.mean
                    ),
                    font(22.0),
                )
                .x_label_area_size(40)
                .y_label_area_size(170);
        }
        let n = count as f64;
        let mut chart = builder.build_cartesian_2d(low..1.0f64, 0.0..n).map_err(s)?;
        let names = result.attributes.clone();
        let y_label = move |v: &f64| -> String {
            let i = n - v.floor() - 1.0;
            if (v - v.floor() - 0.5).abs() < 1e-9 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.disable_y_mesh();
        if text {
            mesh.y_labels(2 * count + 1)
                .y_label_formatter(&y_label)
                .x_desc("accuracy")
                .label_style(font(13.0))
                .axis_desc_style(font(15.0));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(s)?;
        chart
            .draw_series(
                result
                    .metrics
                    .per_attribute
                    .iter()
                    .enumerate()
                    .map(|(i, &acc)| {
                        let y0 = n - i as f64 - 1.0;
                        Rectangle::new([(low, y0 + 0.15), (acc, y0 + 0.85)], PALETTE[0].filled())
                    }),
            )
            .map_err(s)?;
        let mean = result.metrics.mean;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(mean, 0.0), (mean, n)],
                PALETTE[1].stroke_width(2),
            )))
            .map_err(s)?;
        Ok(())
    })
}
