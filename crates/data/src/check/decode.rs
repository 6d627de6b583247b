//! Decoding every image of a dataset in parallel and counting the failures.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::report::{DatasetReport, DecodeTally};
use crate::preprocess::{decode_rgb8, decode_rgb8_bytes, DecodeLimits};

/// An error and its sources on one line (`a: b: c`), skipping a source whose text the line
/// already holds (some errors repeat their source in their own message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string().trim().to_owned();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        let part = part.trim();
        if !text.contains(part) {
            text.push_str(": ");
            text.push_str(part);
        }
        source = s.source();
    }
    text
}

/// The indices to check: all of `0..n`, or `cap` of them evenly spread.
pub fn selected(n: usize, cap: Option<usize>) -> Vec<usize> {
    match cap {
        Some(cap) if cap < n => (0..cap).map(|i| i * n / cap).collect(),
        _ => (0..n).collect(),
    }
}

/// Runs `job` on each index in parallel; an `Err((image, reason))` counts as a bad image.
pub fn tally(
    indices: &[usize],
    job: impl Fn(usize) -> Result<(), (String, String)> + Sync,
) -> DecodeTally {
    let failures: Vec<(usize, (String, String))> = indices
        .par_iter()
        .filter_map(|&i| job(i).err().map(|e| (i, e)))
        .collect();
    let mut failures = failures;
    failures.sort_by_key(|(i, _)| *i);
    DecodeTally {
        checked: indices.len(),
        bad: failures.len(),
        examples: failures
            .into_iter()
            .take(DecodeTally::EXAMPLES)
            .map(|(_, e)| e)
            .collect(),
    }
}

/// Decodes image files.
pub fn decode_files(paths: &[&Path], cap: Option<usize>, limits: &DecodeLimits) -> DecodeTally {
    let indices = selected(paths.len(), cap);
    tally(&indices, |i| {
        decode_rgb8(paths[i], limits)
            .map(|_| ())
            .map_err(|e| (paths[i].display().to_string(), error_chain(&e)))
    })
}

/// Decodes encoded images held in memory; `name(i)` names image `i` in messages.
pub fn decode_blobs(
    blobs: &[Vec<u8>],
    name: impl Fn(usize) -> PathBuf + Sync,
    cap: Option<usize>,
    limits: &DecodeLimits,
) -> DecodeTally {
    let indices = selected(blobs.len(), cap);
    tally(&indices, |i| {
        let name = name(i);
        decode_rgb8_bytes(&blobs[i], &name, limits)
            .map(|_| ())
            .map_err(|e| (name.display().to_string(), error_chain(&e)))
    })
}

/// Records the tally on the report and fails it when more than `max_fraction` of the images
/// checked are bad.
pub fn apply_tally(report: &mut DatasetReport, tally: DecodeTally, max_fraction: f64) {
    if tally.bad > 0 {
        let fraction = tally.bad as f64 / tally.checked.max(1) as f64;
        let message = format!(
            "{} of {} images ({:.3}%) failed to decode",
            tally.bad,
            tally.checked,
            100.0 * fraction
        );
        if fraction > max_fraction {
            report.fail(format!(
                "{message}, over the allowed fraction max_bad_image_fraction = {max_fraction}"
            ));
        } else {
            report.notes.push(format!(
                "{message}; within max_bad_image_fraction = {max_fraction}, they will be skipped"
            ));
        }
    }
    report.decode = Some(tally);
}
