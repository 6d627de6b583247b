//! What `swinface eval` writes: `results.json` (every number), `report.md` (tables, the
//! paper's numbers beside ours, the plots) and the PNG plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::EvalError;
use super::plots;
use super::suite::EvalResults;

/// How these results differ in method from the official code's logs (and why).
pub const METHOD_NOTES: [&str; 5] = [
    "RAF-DB and CelebA accuracies count correct predictions over the whole test set; the \
     official callbacks average per-batch accuracies (all-reduced means of the ranks' batches), \
     which differs when the last batch is smaller or ranks hold unequal shares.",
    "FG-NET and CLAP2015 metrics are computed over the whole set; the official callbacks, when \
     run on several GPUs, log the metric of rank 0's shard only.",
    "Verification (.bin) follows insightface exactly: images and flips embedded, summed, \
     L2-normalised; squared L2 distance; thresholds 0..4 step 0.01; 10 folds without shuffling; \
     accuracy mean and population std; VAL at FAR 1e-3 interpolated as scipy <= 1.8.1 does \
     (later scipy refuses the repeated FAR values).",
    "IJB-C follows eval_ijbc.py's defaults: image + flip features added, no per-image \
     normalisation, detector-score weighting, media mean then template sum, L2 norm, cosine \
     score; TAR read off sklearn's roc_curve at the FPR closest to each target.",
    "Evaluation images are resized to the model's input with Pillow-exact antialiased bilinear \
     interpolation (torchvision Resize) when not already that size, then normalised with \
     mean = std = 0.5.",
];

/// The paper's results (SwinFace, arXiv 2308.11509) for the table beside ours.
const PAPER: [(&str, &str); 10] = [
    ("RAF-DB top-1", "90.97 %"),
    ("CLAP2015 epsilon-error", "0.2200"),
    ("CLAP2015 MAE", "2.47"),
    ("CelebA mean accuracy", "91.32 %"),
    ("lfw", "99.87 %"),
    ("cfp_fp", "98.60 %"),
    ("agedb_30", "98.15 %"),
    ("calfw", "96.10 %"),
    ("cplfw", "93.42 %"),
    ("IJB-C TAR @ FAR 1e-4", "96.73 %"),
];

/// Where the report came from.
#[derive(Debug, Clone, Serialize)]
pub struct ReportHeader {
    pub checkpoint: PathBuf,
    pub config: PathBuf,
    pub device: String,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    header: &'a ReportHeader,
    notes: &'a [&'static str],
    plots: &'a [String],
    plot_errors: &'a [String],
    results: &'a EvalResults,
}

/// Files written by [`write_report`].
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub plots: Vec<PathBuf>,
    /// Plots that could not be drawn (the report says so; the run does not fail).
    pub plot_errors: Vec<String>,
}

/// Draws the plots, then writes `results.json` and `report.md` into `dir`.
pub fn write_report(
    dir: &Path,
    header: &ReportHeader,
    results: &EvalResults,
) -> Result<Written, EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut plots = Vec::new();
    let mut plot_errors = Vec::new();
    let mut attempt = |name: &str, draw: &dyn Fn(&Path) -> Result<(), EvalError>| {
        let path = dir.join(name);
        match draw(&path) {
            Ok(()) => plots.push(name.to_owned()),
            Err(e) => {
                tracing::warn!("{e}");
                plot_errors.push(e.to_string());
            }
        }
    };
    if !results.verification.is_empty() {
        attempt("roc_verification.png", &|p| {
            plots::verification_roc(p, &results.verification)
        });
    }
    if let Some(ijb) = &results.ijbc {
        attempt("roc_ijbc.png", &|p| plots::ijb_roc(p, ijb));
    }
    if let Some(raf) = &results.raf {
        attempt("raf_confusion.png", &|p| plots::confusion_matrix(p, raf));
    }
    let ages: Vec<(&str, &super::analysis::AgeResult)> = [
        ("FG-NET", results.fgnet.as_ref()),
        ("CLAP2015", results.clap.as_ref()),
    ]
    .into_iter()
    .filter_map(|(n, r)| r.map(|r| (n, r)))
    .collect();
    if !ages.is_empty() {
        attempt("age_errors.png", &|p| plots::age_errors(p, &ages));
    }
    if let Some(celeba) = &results.celeba {
        attempt("celeba_attributes.png", &|p| {
            plots::attribute_accuracy(p, celeba)
        });
    }

    let json_path = dir.join("results.json");
    let json = serde_json::to_vec_pretty(&JsonReport {
        header,
        notes: &METHOD_NOTES,
        plots: &plots,
        plot_errors: &plot_errors,
        results,
    })
    .map_err(|e| EvalError::File {
        path: json_path.clone(),
        message: e.to_string(),
    })?;
    swinface_data::formats::atomic::write_atomic(&json_path, &json)?;
    let md_path = dir.join("report.md");
    let markdown = markdown(header, results, &plots, &plot_errors);
    swinface_data::formats::atomic::write_atomic(&md_path, markdown.as_bytes())?;
    Ok(Written {
        json: json_path,
        markdown: md_path,
        plots: plots.iter().map(|p| dir.join(p)).collect(),
        plot_errors,
    })
}

fn pct(v: f64) -> String {
    format!("{:.2} %", 100.0 * v)
}

/// Our number for each line of the paper's table, where this run has it.
fn ours_for(results: &EvalResults, key: &str) -> Option<String> {
    match key {
        "RAF-DB top-1" => results.raf.as_ref().map(|r| pct(r.metrics.top1)),
        "CLAP2015 epsilon-error" => results
            .clap
            .as_ref()
            .and_then(|r| r.metrics.epsilon_error)
            .map(|e| format!("{e:.4}")),
        "CLAP2015 MAE" => results
            .clap
            .as_ref()
            .map(|r| format!("{:.2}", r.metrics.mae)),
        "CelebA mean accuracy" => results.celeba.as_ref().map(|r| pct(r.metrics.mean)),
        "IJB-C TAR @ FAR 1e-4" => results.ijbc.as_ref().and_then(|r| {
            r.tar_at_far
                .iter()
                .find(|(far, _)| (*far - 1e-4).abs() < 1e-12)
                .map(|(_, tar)| pct(*tar))
        }),
        name => results
            .verification
            .iter()
            .find(|v| v.name == name)
            .map(|v| pct(v.metrics.accuracy)),
    }
}

fn markdown(
    header: &ReportHeader,
    r: &EvalResults,
    plots: &[String],
    plot_errors: &[String],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# SwinFace evaluation\n");
    let _ = writeln!(md, "- checkpoint: `{}`", header.checkpoint.display());
    let _ = writeln!(md, "- config: `{}`", header.config.display());
    let _ = writeln!(
        md,
        "- device: {}; swinface {}",
        header.device, header.version
    );
    let _ = writeln!(
        md,
        "- shard: rank {} of {} (results gathered over all ranks)\n",
        r.shard.rank, r.shard.world_size
    );

    let _ = writeln!(md, "## Summary against the paper\n");
    let _ = writeln!(md, "| Benchmark | This run | Paper |\n|---|---:|---:|");
    for (key, paper) in PAPER {
        if let Some(ours) = ours_for(r, key) {
            let _ = writeln!(md, "| {key} | {ours} | {paper} |");
        }
    }
    if let Some(f) = &r.fgnet {
        let _ = writeln!(md, "| FG-NET MAE | {:.2} | - |", f.metrics.mae);
    }
    md.push('\n');

    if !r.verification.is_empty() {
        let _ = writeln!(md, "## Verification (10-fold)\n");
        let _ = writeln!(
            md,
            "| Set | Pairs | Accuracy | Std | VAL @ FAR 1e-3 | XNorm |\n|---|---:|---:|---:|---:|---:|"
        );
        for v in &r.verification {
            let m = &v.metrics;
            let val = match &m.val {
                Ok(val) => format!("{:.4} ± {:.4} (FAR {:.5})", val.val, val.val_std, val.far),
                Err(why) => format!("n/a: {why}"),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.5} | {:.5} | {val} | {:.3} |",
                v.name, m.pairs, m.accuracy, m.accuracy_std, m.xnorm
            );
        }
        md.push('\n');
    }
    if let Some(i) = &r.ijbc {
        let _ = writeln!(md, "## {} 1:1 verification\n", i.target);
        let _ = writeln!(
            md,
            "{} images, {} templates, {} pairs, AUC {:.4}\n",
            i.images, i.templates, i.pairs, i.auc
        );
        let _ = writeln!(md, "| FAR | TAR |\n|---:|---:|");
        for (far, tar) in &i.tar_at_far {
            let _ = writeln!(md, "| {far:e} | {} |", pct(*tar));
        }
        md.push('\n');
    }
    if let Some(raf) = &r.raf {
        let m = &raf.metrics;
        let _ = writeln!(md, "## RAF-DB test ({} images)\n", m.samples);
        let _ = writeln!(
            md,
            "top-1 {}, top-5 {}, mean class accuracy {}, loss {:.4}\n",
            pct(m.top1),
            pct(m.top5),
            pct(m.mean_class_accuracy),
            m.loss
        );
        let _ = writeln!(md, "| Class | Images | Accuracy |\n|---|---:|---:|");
        for (c, name) in raf.classes.iter().enumerate() {
            let count: u64 = m.confusion[c].iter().sum();
            let acc = m.per_class[c].map_or("-".into(), pct);
            let _ = writeln!(md, "| {name} | {count} | {acc} |");
        }
        md.push('\n');
    }
    for (name, age) in [("CLAP2015", &r.clap), ("FG-NET", &r.fgnet)] {
        if let Some(a) = age {
            let m = &a.metrics;
            let _ = write!(md, "## {name} ({} images)\n\nMAE {:.3}", m.samples, m.mae);
            if let Some(eps) = m.epsilon_error {
                let _ = write!(md, ", epsilon-error {eps:.4}");
            }
            let _ = writeln!(md, ", mean signed error {:+.3}\n", m.mean_error);
        }
    }
    if let Some(c) = &r.celeba {
        let _ = writeln!(
            md,
            "## CelebA test ({} images)\n\nmean accuracy over the 40 attributes: {}\n",
            c.metrics.samples,
            pct(c.metrics.mean)
        );
        let _ = writeln!(md, "| Attribute | Accuracy |\n|---|---:|");
        for (name, acc) in c.attributes.iter().zip(&c.metrics.per_attribute) {
            let _ = writeln!(md, "| {name} | {} |", pct(*acc));
        }
        md.push('\n');
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(md, "## Not evaluated\n");
        for (task, why) in &r.skipped {
            let _ = writeln!(md, "- {}: {why}", task.name());
        }
        md.push('\n');
    }
    if !plots.is_empty() || !plot_errors.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for p in plots {
            let _ = writeln!(md, "![{p}]({p})\n");
        }
        for e in plot_errors {
            let _ = writeln!(md, "- not drawn: {e}");
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Timing\n\n| Set | Images | Seconds | Images/s |\n|---|---:|---:|---:|"
    );
    for t in &r.timings {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} |",
            t.dataset, t.images, t.seconds, t.images_per_second
        );
    }
    let _ = writeln!(md, "\n## Method notes\n");
    for note in METHOD_NOTES {
        let _ = writeln!(md, "- {note}");
    }
    md
}
