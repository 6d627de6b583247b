//! `swinface data check`: reads every configured dataset through its reader, composes the
//! training streams, decodes every image, and reports counts, classes, label ranges and
//! failures per dataset.

mod decode;
mod report;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use decode::error_chain;
pub use report::{CheckReport, DatasetReport, DecodeTally, Status};

use crate::attributes::SWINFACE_ATTRIBUTES;
use crate::error::DataError;
use crate::formats::age_gender::AgeGender;
use crate::formats::celeba::Attributes;
use crate::formats::fgnet::{read_fgnet, FgnetSplit};
use crate::formats::image_folder::ImageFolder;
use crate::formats::lap::{read_lap, ApparentAge};
use crate::formats::list::LabelList;
use crate::formats::raf::{read_raf, RafSplit, RAF_CLASSES};
use crate::formats::recordio::{read_property, MxFaceDataset};
use crate::formats::verification_bin::read_bin;
use crate::preprocess::decode_rgb8_bytes;
use crate::streams::{
    age_gender_stream, celeba_list, celeba_train_stream, expression_stream, CelebaSplit,
    ComposedStream, DataConfig,
};
use decode::{apply_tally, decode_blobs, decode_files, selected};

/// A decoded image, or `(image, reason)` for one that failed.
type ImageOutcome = Result<(), (String, String)>;

/// How thoroughly to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Decode at most this many images per dataset (evenly spread); `None`: all of them.
    pub max_images: Option<usize>,
}

/// Checks every dataset `config` names.
pub fn check_data(config: &DataConfig, options: &CheckOptions) -> CheckReport {
    let checker = Checker { config, options };
    let mut datasets = checker.recognition();
    datasets.extend(checker.verification_sets());
    datasets.push(checker.age_gender());
    datasets.push(checker.celeba_train());
    for (name, split) in [
        ("CelebA val", CelebaSplit::Val),
        ("CelebA test", CelebaSplit::Test),
    ] {
        datasets.push(checker.celeba_eval(name, split));
    }
    datasets.push(checker.expression());
    datasets.push(checker.raf_test());
    datasets.push(checker.fgnet());
    for (name, data, label, keys) in [
        (
            "LAP train",
            &config.lap_train_data,
            &config.lap_train_label,
            "LAP_train_data/label",
        ),
        (
            "LAP test",
            &config.lap_test_data,
            &config.lap_test_label,
            "LAP_test_data/label",
        ),
        (
            "CLAP train",
            &config.clap_train_data,
            &config.clap_train_label,
            "CLAP_train_data/label",
        ),
        (
            "CLAP val",
            &config.clap_val_data,
            &config.clap_val_label,
            "CLAP_val_data/label",
        ),
        (
            "CLAP test",
            &config.clap_test_data,
            &config.clap_test_label,
            "CLAP_test_data/label",
        ),
    ] {
        datasets.push(checker.lap(name, data, label, keys));
    }
    CheckReport { datasets }
}

struct Checker<'a> {
    config: &'a DataConfig,
    options: &'a CheckOptions,
}

fn min_max(values: impl Iterator<Item = f32>) -> Option<(f32, f32)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn percent(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

fn age_summary(ages: impl Iterator<Item = f32>) -> String {
    min_max(ages).map_or_else(String::new, |(lo, hi)| format!("age {lo}..{hi}"))
}

fn class_histogram(labels: impl Iterator<Item = u8>, classes: u8) -> String {
    let mut counts = vec![0usize; usize::from(classes)];
    for l in labels {
        if let Some(c) = counts.get_mut(usize::from(l)) {
            *c += 1;
        }
    }
    format!("per class {counts:?}")
}

fn attribute_summary<'l>(labels: impl Iterator<Item = &'l Attributes>) -> String {
    let mut positives = [0usize; 40];
    let mut n = 0;
    for row in labels {
        n += 1;
        for (p, &v) in positives.iter_mut().zip(row) {
            *p += usize::from(v);
        }
    }
    let rates: Vec<f64> = positives.iter().map(|&p| percent(p, n)).collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(0.0, f64::max);
    format!(
        "positive {lo:.0}%..{hi:.0}%, {} {:.0}%",
        SWINFACE_ATTRIBUTES[4], rates[4]
    )
}

impl Checker<'_> {
    fn limits(&self) -> &crate::preprocess::DecodeLimits {
        &self.config.decode_limits
    }

    fn finish_decode(&self, report: &mut DatasetReport, tally: DecodeTally) {
        apply_tally(report, tally, self.config.max_bad_image_fraction);
    }

    fn recognition(&self) -> Vec<DatasetReport> {
        let Some(dir) = &self.config.rec else {
            return vec![DatasetReport::not_configured("recognition", "rec")];
        };
        let rec = dir.join("train.rec");
        let idx = dir.join("train.idx");
        if rec.is_file() || idx.is_file() {
            vec![self.recognition_rec(dir, &rec, &idx)]
        } else if dir.is_dir() {
            vec![self.recognition_folder(dir)]
        } else {
            let mut report = DatasetReport::new("recognition", dir.display().to_string());
            report.fail(format!(
                "{} does not exist (rec: a directory with train.rec and train.idx, or an image folder)",
                dir.display()
            ));
            vec![report]
        }
    }

    fn recognition_rec(&self, dir: &Path, rec: &Path, idx: &Path) -> DatasetReport {
        let mut report = DatasetReport::new("recognition", rec.display().to_string());
        let num_classes = self.config.num_classes;
        match read_property(&dir.join("property")) {
            Ok(p) if p.num_classes != num_classes => report.fail(format!(
                "property says {} classes but num_classes is {num_classes}",
                p.num_classes
            )),
            Ok(_) => {}
            Err(DataError::Missing { .. }) => report.notes.push("no property file".into()),
            Err(e) => report.fail(error_chain(&e)),
        }
        let dataset = match MxFaceDataset::open_files(rec, idx) {
            Ok(d) => d,
            Err(e) => {
                report.fail(error_chain(&e));
                return report;
            }
        };
        report.count = dataset.len();
        // Every record of the index must be readable, not only the images.
        let bad_frames: Vec<String> = dataset
            .reader()
            .entries()
            .par_iter()
            .filter_map(|e| dataset.reader().rec().read_at(e.offset).err())
            .map(|e| error_chain(&e))
            .collect();
        if let Some(first) = bad_frames.first() {
            report.fail(format!(
                "{} unreadable records; first: {first}",
                bad_frames.len()
            ));
        }
        let decode_set: BTreeSet<usize> = selected(dataset.len(), self.options.max_images)
            .into_iter()
            .collect();
        // One pass reads every label and decodes the selected images.
        let results: Vec<(Result<i64, String>, Option<ImageOutcome>)> = (0..dataset.len())
            .into_par_iter()
            .map(|i| match dataset.get(i, Some(num_classes)) {
                Err(e) => (Err(error_chain(&e)), None),
                Ok(sample) => {
                    let decoded = decode_set.contains(&i).then(|| {
                        let name = PathBuf::from(format!("{}#{}", rec.display(), sample.key));
                        decode_rgb8_bytes(&sample.image, &name, self.limits())
                            .map(|_| ())
                            .map_err(|e| (name.display().to_string(), error_chain(&e)))
                    });
                    (Ok(sample.label), decoded)
                }
            })
            .collect();
        let mut labels = Vec::with_capacity(results.len());
        let mut label_errors = Vec::new();
        let mut failures = Vec::new();
        for (label, decoded) in results {
            match label {
                Ok(l) => labels.push(l),
                Err(e) => label_errors.push(e),
            }
            if let Some(Err(f)) = decoded {
                failures.push(f);
            }
        }
        if let Some(first) = label_errors.first() {
            report.fail(format!(
                "{} bad records; first: {first}",
                label_errors.len()
            ));
        }
        labels.sort_unstable();
        labels.dedup();
        report.classes = labels.len().to_string();
        if let (Some(lo), Some(hi)) = (labels.first(), labels.last()) {
            report.labels = format!("label {lo}..{hi}");
        }
        if labels.len() as u64 != num_classes {
            report.notes.push(format!(
                "{} distinct labels, num_classes is {num_classes}",
                labels.len()
            ));
        }
        if report.count as u64 != self.config.num_image {
            report.notes.push(format!(
                "{} images, num_image is {} (it sets the analysis streams' length)",
                report.count, self.config.num_image
            ));
        }
        let checked = decode_set.len();
        let bad = failures.len();
        self.finish_decode(
            &mut report,
            DecodeTally {
                checked,
                bad,
                examples: failures.into_iter().take(DecodeTally::EXAMPLES).collect(),
            },
        );
        report
    }

    fn recognition_folder(&self, dir: &Path) -> DatasetReport {
        let mut report = DatasetReport::new("recognition (folder)", dir.display().to_string());
        let folder = match ImageFolder::read(dir) {
            Ok(f) => f,
            Err(e) => {
                report.fail(error_chain(&e));
                return report;
            }
        };
        report.count = folder.samples.len();
        report.classes = folder.classes.len().to_string();
        report.labels = format!("label 0..{}", folder.classes.len().saturating_sub(1));
        if folder.classes.len() as u64 > self.config.num_classes {
            report.fail(format!(
                "{} identity folders but num_classes is {}",
                folder.classes.len(),
                self.config.num_classes
            ));
        }
        let paths: Vec<&Path> = folder.samples.iter().map(|(p, _)| p.as_path()).collect();
        self.finish_decode(
            &mut report,
            decode_files(&paths, self.options.max_images, self.limits()),
        );
        report
    }

    fn verification_sets(&self) -> Vec<DatasetReport> {
        let Some(dir) = &self.config.rec else {
            return Vec::new();
        };
        self.config
            .val_targets
            .iter()
            .map(|name| {
                let path = dir.join(format!("{name}.bin"));
                let mut report =
                    DatasetReport::new(format!("{name}.bin"), path.display().to_string());
                match read_bin(&path) {
                    Err(e) => report.fail(error_chain(&e)),
                    Ok(set) => {
                        report.count = set.images.len();
                        report.classes = "pairs".into();
                        let same = set.issame.iter().filter(|&&s| s).count();
                        report.labels = format!("{} pairs, {same} same", set.pairs());
                        if set.pairs() == 0 {
                            report.fail(format!("{} holds no pairs", path.display()));
                        }
                        let tally = decode_blobs(
                            &set.images,
                            |i| PathBuf::from(format!("{}[{i}]", path.display())),
                            self.options.max_images,
                            self.limits(),
                        );
                        self.finish_decode(&mut report, tally);
                    }
                }
                report
            })
            .collect()
    }

    /// Decodes the distinct images a composed stream uses.
    fn decode_stream<L>(&self, report: &mut DatasetReport, stream: &ComposedStream<L>) {
        let used: BTreeSet<(u16, u32)> =
            stream.samples.iter().map(|r| (r.source, r.entry)).collect();
        let paths: Vec<&Path> = used
            .iter()
            .map(|&(s, e)| {
                stream.sources[usize::from(s)].list.entries[e as usize]
                    .image
                    .as_path()
            })
            .collect();
        self.finish_decode(
            report,
            decode_files(&paths, self.options.max_images, self.limits()),
        );
    }

    fn stream_report<L>(
        &self,
        name: &str,
        source: String,
        stream: Result<ComposedStream<L>, DataError>,
        classes: &str,
        summary: impl Fn(&ComposedStream<L>) -> String,
    ) -> DatasetReport {
        let mut report = DatasetReport::new(name, source);
        match stream {
            Err(e) => report.fail(error_chain(&e)),
            Ok(stream) => {
                report.count = stream.len();
                report.classes = classes.into();
                report.labels = summary(&stream);
                let parts: Vec<String> = stream
                    .counts_per_source()
                    .iter()
                    .map(|(n, c)| format!("{n} {c}"))
                    .collect();
                report.notes.push(format!(
                    "composition: {} (N = {})",
                    parts.join(", "),
                    stream.len()
                ));
                self.decode_stream(&mut report, &stream);
            }
        }
        report
    }

    fn age_gender(&self) -> DatasetReport {
        let Some(root) = &self.config.age_gender_data_path else {
            return DatasetReport::not_configured("age_gender stream", "age_gender_data_path");
        };
        self.stream_report(
            "age_gender stream",
            root.display().to_string(),
            age_gender_stream(self.config),
            "age, gender",
            |s: &ComposedStream<AgeGender>| {
                let labels: Vec<&AgeGender> = (0..s.len())
                    .filter_map(|i| s.get(i))
                    .map(|(_, l)| l)
                    .collect();
                let male = labels.iter().filter(|l| l.gender == 1).count();
                format!(
                    "{}, male {:.0}%",
                    age_summary(labels.iter().map(|l| l.age)),
                    percent(male, labels.len())
                )
            },
        )
    }

    fn celeba_train(&self) -> DatasetReport {
        let Some(label) = &self.config.celeba_train_label else {
            return DatasetReport::not_configured("CelebA train stream", "CelebA_train_label");
        };
        self.stream_report(
            "CelebA train stream",
            label.display().to_string(),
            celeba_train_stream(self.config),
            "40 binary",
            |s: &ComposedStream<Attributes>| {
                attribute_summary((0..s.len()).filter_map(|i| s.get(i)).map(|(_, l)| l))
            },
        )
    }

    fn expression(&self) -> DatasetReport {
        if self.config.affectnet_label.is_none() && self.config.raf_label.is_none() {
            return DatasetReport::not_configured(
                "expression stream",
                "AffectNet_label, RAF_label",
            );
        }
        let source = [&self.config.affectnet_label, &self.config.raf_label]
            .iter()
            .filter_map(|p| p.as_ref().map(|p| p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        self.stream_report(
            "expression stream",
            source,
            expression_stream(self.config),
            "7",
            |s: &ComposedStream<u8>| {
                class_histogram(
                    (0..s.len()).filter_map(|i| s.get(i)).map(|(_, &l)| l),
                    RAF_CLASSES,
                )
            },
        )
    }

    fn list_report<L>(
        &self,
        name: &str,
        source: String,
        list: Result<LabelList<L>, DataError>,
        classes: &str,
        summary: impl Fn(&LabelList<L>) -> String,
    ) -> DatasetReport {
        let mut report = DatasetReport::new(name, source);
        match list {
            Err(e) => report.fail(error_chain(&e)),
            Ok(list) => {
                report.count = list.len();
                report.classes = classes.into();
                report.labels = summary(&list);
                if list.is_empty() {
                    report.fail(format!("{} lists no images", list.label_file.display()));
                }
                let paths: Vec<&Path> = list.entries.iter().map(|e| e.image.as_path()).collect();
                self.finish_decode(
                    &mut report,
                    decode_files(&paths, self.options.max_images, self.limits()),
                );
            }
        }
        report
    }

    fn celeba_eval(&self, name: &str, split: CelebaSplit) -> DatasetReport {
        let label = match split {
            CelebaSplit::Val => &self.config.celeba_val_label,
            _ => &self.config.celeba_test_label,
        };
        let Some(label) = label else {
            return DatasetReport::not_configured(
                name,
                &format!("{}_label", name.replace(' ', "_")),
            );
        };
        self.list_report(
            name,
            label.display().to_string(),
            celeba_list(self.config, split),
            "40 binary",
            |l| attribute_summary(l.entries.iter().map(|e| &e.label)),
        )
    }

    fn raf_test(&self) -> DatasetReport {
        let (Some(label), Some(data)) = (&self.config.raf_label, &self.config.raf_data) else {
            return DatasetReport::not_configured("RAF-DB test", "RAF_data, RAF_label");
        };
        self.list_report(
            "RAF-DB test",
            label.display().to_string(),
            read_raf(label, data, RafSplit::Test),
            "7",
            |l| class_histogram(l.entries.iter().map(|e| e.label), RAF_CLASSES),
        )
    }

    fn fgnet(&self) -> DatasetReport {
        let (Some(label), Some(data)) = (&self.config.fgnet_label, &self.config.fgnet_data) else {
            return DatasetReport::not_configured("FG-NET", "FGnet_data, FGnet_label");
        };
        self.list_report(
            "FG-NET",
            label.display().to_string(),
            read_fgnet(label, data, FgnetSplit::All),
            "age",
            |l| age_summary(l.entries.iter().map(|e| e.label)),
        )
    }

    fn lap(
        &self,
        name: &str,
        data: &Option<PathBuf>,
        label: &Option<PathBuf>,
        keys: &str,
    ) -> DatasetReport {
        let (Some(label), Some(data)) = (label, data) else {
            return DatasetReport::not_configured(name, keys);
        };
        self.list_report(
            name,
            label.display().to_string(),
            read_lap(label, data),
            "age mean, std",
            |l: &LabelList<ApparentAge>| {
                let stds = min_max(l.entries.iter().map(|e| e.label.std));
                format!(
                    "{}, std {}",
                    age_summary(l.entries.iter().map(|e| e.label.mean)),
                    stds.map_or_else(String::new, |(a, b)| format!("{a}..{b}"))
                )
            },
        )
    }
}
