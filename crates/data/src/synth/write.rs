//! Lays a generated dataset out in every on-disk format SwinFace reads, mirroring the
//! official directory layout (`configs/config_train.py`), so one YAML config points at it:
//!
//! ```text
//! OUT/faces_emore/{train.rec,train.idx,property,lfw.bin,cfp_fp.bin,agedb_30.bin}
//! OUT/AIO_train/{Adience,MORPH,WIKI,IMDB}/{label.txt,data/*.jpg}
//! OUT/CelebA/{data/*.jpg,list_attr_celeba.txt,list_eval_partition.txt}
//! OUT/AIO_{train,val,test}/CelebA/label.txt
//! OUT/RAF/basic/{list_patition_label.txt,train_00001.jpg,Image/aligned/train_00001_aligned.jpg}
//! OUT/AffectNet/{label.txt,data/*.jpg}
//! OUT/LAP_test/{test.csv,test/*.jpg}
//! OUT/AIO_val/FGnet/{label.txt,data/*.jpg}
//! OUT/swinface_synth.json, OUT/swinface_data.yaml
//! ```
//!
//! Everything is written into a hidden sibling directory and moved into place at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::{SynthConfig, VERIFICATION_SET_NAMES};
use super::error::SynthError;
use super::identity::AgeRange;
use super::labels::FaceLabels;
use super::rng::SynthRng;
use super::spec::{FaceSpec, ImagePolicy};
use super::{encode_jpeg, person, photo, population, render, IMAGE_SIZE};
use crate::attributes::{swinface_row_to_celeba, CELEBA_ATTRIBUTES, SWINFACE_ATTRIBUTES};
use crate::formats::atomic::write_atomic;
use crate::formats::recordio::{write_property, IrHeader, Property, RecordWriter};
use crate::formats::verification_bin::write_bin;
use crate::streams::DataConfig;

/// The manifest's file name; its presence marks a directory this generator wrote.
pub const MANIFEST_NAME: &str = "swinface_synth.json";
/// A data config (official key names, absolute paths) for the written dataset.
pub const DATA_CONFIG_NAME: &str = "swinface_data.yaml";

/// What was written: the configuration and, per dataset, how many images or rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthManifest {
    pub generator: String,
    pub format_version: u32,
    pub seed: u64,
    pub config: SynthConfig,
    pub counts: BTreeMap<String, usize>,
}

/// Images of one identity are contiguous in the `.rec`; identities are rendered this many at
/// a time so memory stays bounded.
const RECOGNITION_CHUNK: usize = 2048;

/// Writes every dataset of `config` to `out_dir`. An existing `out_dir` is replaced only when
/// it is empty or holds a previous generator output (a manifest).
pub fn write_all(out_dir: &Path, config: &SynthConfig) -> Result<SynthManifest, SynthError> {
    config.validate()?;
    check_replaceable(out_dir)?;
    let final_dir = std::path::absolute(out_dir).map_err(|e| SynthError::io(out_dir, e))?;
    let parent = final_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = final_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| SynthError::Config {
            message: format!("{} is not a directory name", out_dir.display()),
        })?;
    fs::create_dir_all(&parent).map_err(|e| SynthError::io(&parent, e))?;
    let staging = parent.join(format!(".{name}.synth-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| SynthError::io(&staging, e))?;
    }
    fs::create_dir_all(&staging).map_err(|e| SynthError::io(&staging, e))?;
    let manifest = match Writer::new(&staging, &final_dir, config).write() {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if final_dir.exists() {
        let old = parent.join(format!(".{name}.synth-old-{}", std::process::id()));
        fs::rename(&final_dir, &old).map_err(|e| SynthError::io(&final_dir, e))?;
        fs::rename(&staging, &final_dir).map_err(|e| SynthError::io(&final_dir, e))?;
        fs::remove_dir_all(&old).map_err(|e| SynthError::io(&old, e))?;
    } else {
        fs::rename(&staging, &final_dir).map_err(|e| SynthError::io(&final_dir, e))?;
    }
    Ok(manifest)
}

fn check_replaceable(out_dir: &Path) -> Result<(), SynthError> {
    match fs::read_dir(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SynthError::io(out_dir, e)),
        Ok(mut entries) => {
            if entries.next().is_none() || out_dir.join(MANIFEST_NAME).is_file() {
                Ok(())
            } else {
                Err(SynthError::OutputExists {
                    path: out_dir.to_path_buf(),
                })
            }
        }
    }
}

fn create_dir(path: &Path) -> Result<(), SynthError> {
    fs::create_dir_all(path).map_err(|e| SynthError::io(path, e))
}

fn write_text(path: &Path, text: &str) -> Result<(), SynthError> {
    Ok(write_atomic(path, text.as_bytes())?)
}

/// One age-gender source: directory name, population, rows, age range.
struct AgeGenderSource {
    name: &'static str,
    population: u64,
    rows: usize,
    ages: AgeRange,
}

struct Writer<'a> {
    root: &'a Path,
    final_root: &'a Path,
    config: &'a SynthConfig,
    counts: BTreeMap<String, usize>,
}

impl<'a> Writer<'a> {
    fn new(root: &'a Path, final_root: &'a Path, config: &'a SynthConfig) -> Self {
        Self {
            root,
            final_root,
            config,
            counts: BTreeMap::new(),
        }
    }

    fn seed(&self) -> u64 {
        self.config.seed
    }

    /// `base` at this dataset's nuisance and caricature levels.
    fn policy(&self, base: ImagePolicy) -> ImagePolicy {
        base.with_nuisance(self.config.nuisance)
            .with_caricature(self.config.caricature)
    }

    fn jpeg(&self, spec: &FaceSpec) -> Result<Vec<u8>, SynthError> {
        encode_jpeg(&render(spec), self.config.jpeg_quality)
    }

    /// A one-photo person of an analysis dataset, at a whole-year age.
    fn single(
        &self,
        population: u64,
        index: usize,
        ages: AgeRange,
        policy: &ImagePolicy,
    ) -> FaceSpec {
        let id = index as u64;
        let who = person(self.seed(), population, id, ages);
        let age = who.base_age.round().max(1.0);
        photo(self.seed(), population, id, 0, &who, Some(age), policy)
    }

    /// Renders `n` images in parallel, writing each under `dir` by the name `make` gives.
    fn write_folder(
        &self,
        dir: &Path,
        n: usize,
        make: impl Fn(usize) -> (String, FaceSpec) + Sync,
    ) -> Result<Vec<(String, FaceLabels)>, SynthError> {
        create_dir(dir)?;
        (0..n)
            .into_par_iter()
            .map(|i| {
                let (name, spec) = make(i);
                let path = dir.join(&name);
                fs::write(&path, self.jpeg(&spec)?).map_err(|e| SynthError::io(&path, e))?;
                Ok((name, spec.labels))
            })
            .collect()
    }

    fn write(mut self) -> Result<SynthManifest, SynthError> {
        self.recognition()?;
        for name in &self.config.verification_sets {
            self.verification(name)?;
        }
        self.age_gender()?;
        self.celeba()?;
        self.raf()?;
        self.affectnet()?;
        self.lap()?;
        self.fgnet()?;
        let total = self
            .counts
            .iter()
            .filter(|(k, _)| k.ends_with("_images"))
            .map(|(_, v)| v)
            .sum();
        self.counts.insert("total_images".into(), total);
        let manifest = SynthManifest {
            generator: "swinface synth".into(),
            format_version: 1,
            seed: self.seed(),
            config: self.config.clone(),
            counts: self.counts.clone(),
        };
        let json = serde_json::to_string_pretty(&manifest).map_err(SynthError::Manifest)?;
        write_text(&self.root.join(MANIFEST_NAME), &(json + "\n"))?;
        let yaml =
            serde_yaml::to_string(&data_config(self.final_root, self.config)).map_err(|e| {
                SynthError::Config {
                    message: format!("cannot express the data config as YAML: {e}"),
                }
            })?;
        write_text(
            &self.root.join(DATA_CONFIG_NAME),
            &format!(
                "# Data config for the dataset generated by `swinface synth` in this directory.\n{yaml}"
            ),
        )?;
        Ok(manifest)
    }

    /// `faces_emore/train.rec`: record 0 = `[1 + images, 1 + images + identities]`, images as
    /// keys `1..=images` labelled with their identity, then one record per identity whose
    /// label is its image key range `[start, end)`.
    fn recognition(&mut self) -> Result<(), SynthError> {
        let dir = self.root.join("faces_emore");
        create_dir(&dir)?;
        let ids = self.config.identities;
        let per = self.config.images_per_identity;
        let images = ids * per;
        let mut rec = RecordWriter::create(&dir.join("train.rec"), &dir.join("train.idx"))?;
        let end_images = (images + 1) as f32;
        let end_ids = (images + 1 + ids) as f32;
        rec.write_packed(0, &IrHeader::vector(vec![end_images, end_ids], 0), &[])?;
        let policy = self.policy(ImagePolicy::portraits());
        let ages = AgeRange {
            min: 5.0,
            max: 80.0,
        };
        let seed = self.seed();
        let mut next = 0usize;
        while next < images {
            let chunk = RECOGNITION_CHUNK.min(images - next);
            let encoded: Vec<Vec<u8>> = (next..next + chunk)
                .into_par_iter()
                .map(|k| {
                    let id = (k / per) as u64;
                    let who = person(seed, population::RECOGNITION, id, ages);
                    let spec = photo(
                        seed,
                        population::RECOGNITION,
                        id,
                        (k % per) as u64,
                        &who,
                        None,
                        &policy,
                    );
                    self.jpeg(&spec)
                })
                .collect::<Result<_, _>>()?;
            for (offset, bytes) in encoded.iter().enumerate() {
                let k = next + offset;
                let key = (k + 1) as u64;
                rec.write_packed(key, &IrHeader::scalar((k / per) as f32, key), bytes)?;
            }
            next += chunk;
        }
        for id in 0..ids {
            let key = (images + 1 + id) as u64;
            let start = (1 + id * per) as f32;
            rec.write_packed(
                key,
                &IrHeader::vector(vec![start, start + per as f32], key),
                &[],
            )?;
        }
        rec.finish()?;
        write_property(
            &dir.join("property"),
            &Property {
                num_classes: ids as u64,
                height: IMAGE_SIZE as u32,
                width: IMAGE_SIZE as u32,
            },
        )?;
        self.counts.insert("recognition_images".into(), images);
        self.counts.insert("recognition_identities".into(), ids);
        Ok(())
    }

    /// `faces_emore/NAME.bin`: pairs of held-out people, alternating blocks of same-person and
    /// different-person pairs (so each of insightface's 10 folds is balanced when the count
    /// divides by 20). CFP-FP / CPLFW pairs have a wide pose on one or both sides; AgeDB-30 /
    /// CALFW pairs are 10 to 30 years apart.
    fn verification(&mut self, name: &str) -> Result<(), SynthError> {
        let pairs = self.config.verification_pairs;
        if pairs == 0 {
            return Ok(());
        }
        let set = VERIFICATION_SET_NAMES
            .iter()
            .position(|n| *n == name)
            .unwrap_or(0) as u64;
        let people = self.config.verification_identities as u64;
        let block = if pairs.is_multiple_of(20) {
            pairs / 20
        } else {
            1
        };
        let seed = self.seed();
        let ages = AgeRange {
            min: 5.0,
            max: 80.0,
        };
        let portraits = self.policy(ImagePolicy::portraits());
        let wide = self.policy(ImagePolicy::wide_pose());
        let rendered: Vec<(Vec<u8>, Vec<u8>)> = (0..pairs)
            .into_par_iter()
            .map(|i| {
                let same = (i / block) % 2 == 0;
                let mut rng = SynthRng::keyed(seed, &[0xB1, set, i as u64]);
                let a = rng.below(people as usize) as u64;
                let b = if same {
                    a
                } else {
                    (a + 1 + rng.below(people as usize - 1) as u64) % people
                };
                let (who_a, who_b) = (
                    person(seed, population::VERIFICATION, a, ages),
                    person(seed, population::VERIFICATION, b, ages),
                );
                let (age_a, age_b) = match name {
                    "agedb_30" | "calfw" => {
                        let gap = rng.range(10.0, 30.0);
                        let up = who_b.base_age + gap <= 85.0
                            && (who_b.base_age < 45.0 || rng.chance(0.5));
                        let other = if up {
                            who_b.base_age + gap
                        } else {
                            who_b.base_age - gap
                        };
                        (Some(who_a.base_age), Some(other.clamp(3.0, 85.0)))
                    }
                    _ => (None, None),
                };
                let (policy_a, policy_b) = match name {
                    "cfp_fp" => (&portraits, &wide),
                    "cplfw" => (&wide, &wide),
                    _ => (&portraits, &portraits),
                };
                let photo_key = |slot: u64| set << 40 | (i as u64) << 1 | slot;
                let spec_a = photo(
                    seed,
                    population::VERIFICATION,
                    a,
                    photo_key(0),
                    &who_a,
                    age_a,
                    policy_a,
                );
                let spec_b = photo(
                    seed,
                    population::VERIFICATION,
                    b,
                    photo_key(1),
                    &who_b,
                    age_b,
                    policy_b,
                );
                Ok((self.jpeg(&spec_a)?, self.jpeg(&spec_b)?))
            })
            .collect::<Result<_, SynthError>>()?;
        let issame: Vec<bool> = (0..pairs).map(|i| (i / block) % 2 == 0).collect();
        let images: Vec<Vec<u8>> = rendered.into_iter().flat_map(|(a, b)| [a, b]).collect();
        write_bin(
            &self.root.join("faces_emore").join(format!("{name}.bin")),
            &images,
            &issame,
        )?;
        self.counts.insert(format!("{name}_pairs"), pairs);
        self.counts.insert(format!("{name}_images"), 2 * pairs);
        Ok(())
    }

    /// `AIO_train/NAME/label.txt` (`name age gender`, gender `1.0` male) and its images; a few
    /// rows carry `nan` in the age or the gender.
    fn age_gender(&mut self) -> Result<(), SynthError> {
        let c = self.config;
        let sources = [
            AgeGenderSource {
                name: "Adience",
                population: population::ADIENCE,
                rows: c.adience,
                ages: AgeRange {
                    min: 1.0,
                    max: 70.0,
                },
            },
            AgeGenderSource {
                name: "MORPH",
                population: population::MORPH,
                rows: c.morph,
                ages: AgeRange {
                    min: 16.0,
                    max: 77.0,
                },
            },
            AgeGenderSource {
                name: "WIKI",
                population: population::WIKI,
                rows: c.wiki,
                ages: AgeRange {
                    min: 8.0,
                    max: 80.0,
                },
            },
            AgeGenderSource {
                name: "IMDB",
                population: population::IMDB,
                rows: c.imdb,
                ages: AgeRange {
                    min: 8.0,
                    max: 80.0,
                },
            },
        ];
        let policy = self.policy(ImagePolicy::portraits());
        for source in sources {
            if source.rows == 0 {
                continue;
            }
            let dir = self.root.join("AIO_train").join(source.name);
            let rows = self.write_folder(&dir.join("data"), source.rows, |i| {
                (
                    format!("{:06}.jpg", i + 1),
                    self.single(source.population, i, source.ages, &policy),
                )
            })?;
            let nan_rows: Vec<usize> = (0..c.nan_rows)
                .map(|k| (k + 1) * source.rows / (c.nan_rows + 1))
                .collect();
            let mut text = String::from("name age gender\n");
            for (i, (name, labels)) in rows.iter().enumerate() {
                let age = format!("{}", labels.age.round() as i64);
                let gender = if labels.male { "1.0" } else { "0.0" };
                let (age, gender) = match nan_rows.iter().position(|&r| r == i) {
                    Some(k) if k % 2 == 0 => ("nan".to_owned(), gender),
                    Some(_) => (age, "nan"),
                    None => (age, gender),
                };
                let _ = writeln!(text, "{name} {age} {gender}");
            }
            write_text(&dir.join("label.txt"), &text)?;
            self.counts
                .insert(format!("{}_images", source.name), source.rows);
            self.counts.insert(
                format!("{}_labelled", source.name),
                source.rows - nan_rows.len(),
            );
        }
        Ok(())
    }

    /// CelebA: images `CelebA/data/000001.jpg...` in partition order, CelebA's own attribute
    /// and partition lists, and SwinFace's three `label.txt` files.
    fn celeba(&mut self) -> Result<(), SynthError> {
        let c = self.config;
        let total = c.celeba_train + c.celeba_val + c.celeba_test;
        if total == 0 {
            return Ok(());
        }
        let policy = self.policy(ImagePolicy::celebrities());
        let ages = AgeRange {
            min: 12.0,
            max: 75.0,
        };
        let rows = self.write_folder(&self.root.join("CelebA").join("data"), total, |i| {
            (
                format!("{:06}.jpg", i + 1),
                self.single(population::CELEBA, i, ages, &policy),
            )
        })?;
        let mut attr = format!("{total}\n{}\n", CELEBA_ATTRIBUTES.join(" "));
        let mut partition = String::new();
        let header = std::iter::once("image_id".to_owned())
            .chain(SWINFACE_ATTRIBUTES.iter().map(|n| n.replace(' ', "_")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut splits = [header.clone() + "\n", header.clone() + "\n", header + "\n"];
        for (i, (name, labels)) in rows.iter().enumerate() {
            let split = if i < c.celeba_train {
                0
            } else if i < c.celeba_train + c.celeba_val {
                1
            } else {
                2
            };
            attr.push_str(name);
            for &v in swinface_row_to_celeba(&labels.attributes).iter() {
                attr.push_str(if v { "  1" } else { " -1" });
            }
            attr.push('\n');
            let _ = writeln!(partition, "{name} {split}");
            let line = &mut splits[split];
            line.push_str(name);
            for &v in labels.attributes.iter() {
                line.push_str(if v { " 1" } else { " 0" });
            }
            line.push('\n');
        }
        write_text(
            &self.root.join("CelebA").join("list_attr_celeba.txt"),
            &attr,
        )?;
        write_text(
            &self.root.join("CelebA").join("list_eval_partition.txt"),
            &partition,
        )?;
        for (split, text) in ["AIO_train", "AIO_val", "AIO_test"].iter().zip(&splits) {
            let dir = self.root.join(split).join("CelebA");
            create_dir(&dir)?;
            write_text(&dir.join("label.txt"), text)?;
        }
        self.counts.insert("CelebA_images".into(), total);
        self.counts.insert("CelebA_train".into(), c.celeba_train);
        self.counts.insert("CelebA_val".into(), c.celeba_val);
        self.counts.insert("CelebA_test".into(), c.celeba_test);
        Ok(())
    }

    /// RAF-DB basic: `RAF/basic/list_patition_label.txt` (labels 1..7), each image as listed
    /// and as RAF-DB's aligned copy `Image/aligned/NAME_aligned.jpg`.
    fn raf(&mut self) -> Result<(), SynthError> {
        let c = self.config;
        let total = c.raf_train + c.raf_test;
        if total == 0 {
            return Ok(());
        }
        let dir = self.root.join("RAF").join("basic");
        let aligned = dir.join("Image").join("aligned");
        create_dir(&aligned)?;
        let policy = self.policy(ImagePolicy::expressions());
        let ages = AgeRange {
            min: 5.0,
            max: 80.0,
        };
        let rows = self.write_folder(&dir, total, |i| {
            let name = if i < c.raf_train {
                format!("train_{:05}.jpg", i + 1)
            } else {
                format!("test_{:04}.jpg", i - c.raf_train + 1)
            };
            (name, self.single(population::RAF, i, ages, &policy))
        })?;
        let mut list = String::new();
        for (name, labels) in &rows {
            let stem = name.trim_end_matches(".jpg");
            let from = dir.join(name);
            let to = aligned.join(format!("{stem}_aligned.jpg"));
            fs::copy(&from, &to).map_err(|e| SynthError::io(&to, e))?;
            let _ = writeln!(list, "{name} {}", labels.expression.index() + 1);
        }
        write_text(&dir.join("list_patition_label.txt"), &list)?;
        self.counts.insert("RAF_images".into(), total);
        self.counts.insert("RAF_train".into(), c.raf_train);
        self.counts.insert("RAF_test".into(), c.raf_test);
        Ok(())
    }

    /// `AffectNet/label.txt`: header, then `name split label` with the label (RAF-DB order,
    /// 0-based) in the third column.
    fn affectnet(&mut self) -> Result<(), SynthError> {
        let n = self.config.affectnet;
        if n == 0 {
            return Ok(());
        }
        let dir = self.root.join("AffectNet");
        let policy = self.policy(ImagePolicy::expressions());
        let ages = AgeRange {
            min: 5.0,
            max: 80.0,
        };
        let rows = self.write_folder(&dir.join("data"), n, |i| {
            (
                format!("affectnet_{:06}.jpg", i + 1),
                self.single(population::AFFECTNET, i, ages, &policy),
            )
        })?;
        let mut text = String::from("name split expression\n");
        for (name, labels) in &rows {
            let _ = writeln!(text, "{name} train {}", labels.expression.index());
        }
        write_text(&dir.join("label.txt"), &text)?;
        self.counts.insert("AffectNet_images".into(), n);
        Ok(())
    }

    /// CLAP2015 test: `LAP_test/test.csv` rows `name;mean;std` (apparent age: the drawn age
    /// with annotator noise, and the annotators' spread).
    fn lap(&mut self) -> Result<(), SynthError> {
        let n = self.config.lap_test;
        if n == 0 {
            return Ok(());
        }
        let dir = self.root.join("LAP_test");
        let policy = self.policy(ImagePolicy::portraits());
        let ages = AgeRange {
            min: 3.0,
            max: 80.0,
        };
        let rows = self.write_folder(&dir.join("test"), n, |i| {
            (
                format!("image_{:05}.jpg", i + 1),
                self.single(population::LAP, i, ages, &policy),
            )
        })?;
        let mut text = String::new();
        for (i, (name, labels)) in rows.iter().enumerate() {
            let mut rng = SynthRng::keyed(self.seed(), &[0x1A9, i as u64]);
            let mean = (labels.age + rng.normal()).max(1.0);
            let std = rng.range(1.5, 6.0);
            let _ = writeln!(text, "{name};{mean:.4};{std:.4}");
        }
        write_text(&dir.join("test.csv"), &text)?;
        self.counts.insert("CLAP_test_images".into(), n);
        Ok(())
    }

    /// FG-NET: each subject photographed at several distinct ages (mostly young, as FG-NET),
    /// named `001A02.jpg` (subject 1 at age 2); `AIO_val/FGnet/label.txt` is `name age`.
    fn fgnet(&mut self) -> Result<(), SynthError> {
        let c = self.config;
        let per = c.fgnet_images_per_subject;
        let total = c.fgnet_subjects * per;
        if total == 0 {
            return Ok(());
        }
        let dir = self.root.join("AIO_val").join("FGnet");
        let seed = self.seed();
        let ages: Vec<Vec<u32>> = (0..c.fgnet_subjects)
            .map(|s| {
                let mut rng = SynthRng::keyed(seed, &[0xF6, s as u64]);
                let mut chosen: Vec<u32> = Vec::with_capacity(per);
                let mut tries = 0;
                while chosen.len() < per && tries < 10_000 {
                    let age = 1 + (68.0 * rng.unit().powf(1.6)) as u32;
                    if !chosen.contains(&age) {
                        chosen.push(age);
                    }
                    tries += 1;
                }
                let mut fill = 1;
                while chosen.len() < per {
                    if !chosen.contains(&fill) {
                        chosen.push(fill);
                    }
                    fill += 1;
                }
                chosen.sort_unstable();
                chosen
            })
            .collect();
        let policy = self.policy(ImagePolicy::portraits());
        let rows = self.write_folder(&dir.join("data"), total, |k| {
            let (s, j) = (k / per, k % per);
            let age = ages[s][j];
            let who = person(seed, population::FGNET, s as u64, AgeRange::default());
            let spec = photo(
                seed,
                population::FGNET,
                s as u64,
                j as u64,
                &who,
                Some(age as f32),
                &policy,
            );
            (format!("{:03}A{:02}.jpg", s + 1, age), spec)
        })?;
        let mut text = String::from("name age\n");
        for (name, labels) in &rows {
            let _ = writeln!(text, "{name} {}", labels.age.round() as i64);
        }
        write_text(&dir.join("label.txt"), &text)?;
        self.counts.insert("FGnet_images".into(), total);
        Ok(())
    }
}

/// The data config (official key names) of a dataset written to `root` with `config`.
pub fn data_config(root: &Path, config: &SynthConfig) -> DataConfig {
    let at = |rel: &str| Some(root.join(rel));
    let defaults = DataConfig::default();
    DataConfig {
        rec: at("faces_emore"),
        num_classes: config.identities as u64,
        num_image: config.recognition_images() as u64,
        val_targets: config.verification_sets.clone(),
        age_gender_data_path: at("AIO_train"),
        celeba_train_data: at("CelebA/data"),
        celeba_train_label: at("AIO_train/CelebA/label.txt"),
        celeba_val_data: at("CelebA/data"),
        celeba_val_label: at("AIO_val/CelebA/label.txt"),
        celeba_test_data: at("CelebA/data"),
        celeba_test_label: at("AIO_test/CelebA/label.txt"),
        fgnet_data: at("AIO_val/FGnet/data"),
        fgnet_label: at("AIO_val/FGnet/label.txt"),
        raf_data: at("RAF/basic"),
        raf_label: at("RAF/basic/list_patition_label.txt"),
        affectnet_data: at("AffectNet/data"),
        affectnet_label: at("AffectNet/label.txt"),
        clap_test_data: at("LAP_test/test"),
        clap_test_label: at("LAP_test/test.csv"),
        seed: i64::try_from(config.seed).unwrap_or(i64::MAX),
        ..defaults
    }
}
