//! What `swinface data check` found, per dataset, and its table.

use std::fmt::Write;

/// The outcome of checking one dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Ok,
    /// Configured but unusable, or over a limit: the messages say why.
    Failed,
    /// Its config keys are not set.
    NotConfigured,
}

/// Images that failed to decode, and a few of them with the reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeTally {
    pub checked: usize,
    pub bad: usize,
    /// Up to [`DecodeTally::EXAMPLES`] `(image, reason)` pairs.
    pub examples: Vec<(String, String)>,
}

impl DecodeTally {
    pub const EXAMPLES: usize = 5;
}

/// One dataset's line of the table and its messages.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetReport {
    /// What it is, e.g. `recognition`, `lfw.bin`, `age_gender stream`.
    pub name: String,
    /// The file or directory it was read from.
    pub source: String,
    pub status: Status,
    /// Samples (for a composed stream: its epoch length N; for a `.bin`: images).
    pub count: usize,
    /// Number of classes, or what the labels are (`age`, `40 binary`).
    pub classes: String,
    /// Label ranges and distribution, in a few words.
    pub labels: String,
    pub decode: Option<DecodeTally>,
    /// Why it failed (each a full message naming file and line or record).
    pub errors: Vec<String>,
    /// Worth knowing, not failures.
    pub notes: Vec<String>,
}

impl DatasetReport {
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            status: Status::Ok,
            count: 0,
            classes: String::new(),
            labels: String::new(),
            decode: None,
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn not_configured(name: impl Into<String>, keys: &str) -> Self {
        let mut report = Self::new(name, format!("({keys} not set)"));
        report.status = Status::NotConfigured;
        report
    }

    pub fn fail(&mut self, message: impl Into<String>) {
        self.status = Status::Failed;
        self.errors.push(message.into());
    }
}

/// Every dataset's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    pub datasets: Vec<DatasetReport>,
}

impl CheckReport {
    /// True when no dataset failed and at least one was checked.
    pub fn passed(&self) -> bool {
        self.datasets.iter().any(|d| d.status == Status::Ok)
            && self.datasets.iter().all(|d| d.status != Status::Failed)
    }

    /// An aligned table, then each dataset's errors and notes.
    pub fn render(&self) -> String {
        let header = [
            "dataset",
            "status",
            "count",
            "classes",
            "labels",
            "images ok/bad",
        ];
        let rows: Vec<[String; 6]> = self
            .datasets
            .iter()
            .map(|d| {
                [
                    d.name.clone(),
                    match d.status {
                        Status::Ok => "ok".into(),
                        Status::Failed => "FAILED".into(),
                        Status::NotConfigured => "not configured".into(),
                    },
                    if d.status == Status::NotConfigured {
                        String::new()
                    } else {
                        d.count.to_string()
                    },
                    d.classes.clone(),
                    d.labels.clone(),
                    d.decode
                        .as_ref()
                        .map(|t| format!("{}/{}", t.checked - t.bad, t.bad))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&mut out, &header.map(String::from));
        line(&mut out, &widths.map(|w| "-".repeat(w)));
        for row in &rows {
            line(&mut out, row);
        }
        for d in &self.datasets {
            if d.errors.is_empty()
                && d.notes.is_empty()
                && d.decode.as_ref().is_none_or(|t| t.bad == 0)
            {
                continue;
            }
            let _ = writeln!(out, "\n{} ({}):", d.name, d.source);
            for e in &d.errors {
                let _ = writeln!(out, "  error: {e}");
            }
            if let Some(t) = &d.decode {
                for (image, reason) in &t.examples {
                    let _ = writeln!(out, "  bad image: {image}: {reason}");
                }
                if t.bad > t.examples.len() {
                    let _ = writeln!(
                        out,
                        "  ... and {} more bad images",
                        t.bad - t.examples.len()
                    );
                }
            }
            for n in &d.notes {
                let _ = writeln!(out, "  note: {n}");
            }
        }
        let failed = self
            .datasets
            .iter()
            .filter(|d| d.status == Status::Failed)
            .count();
        let checked = self
            .datasets
            .iter()
            .filter(|d| d.status != Status::NotConfigured)
            .count();
        let _ = writeln!(
            out,
            "\n{}: {checked} datasets checked, {failed} failed",
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        if checked == 0 {
            let _ = writeln!(out, "no dataset is configured");
        }
        out
    }
}
