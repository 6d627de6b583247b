//! Stream composition against the official loops re-run in CPython (the logic of
//! `analysis/datasets.py`, re-typed below), CPython's `random.random()`, and the YAML config.

mod formats_support;

use std::fmt::Write as _;
use std::path::Path;

use formats_support::{message, run_python, scratch_dir, write};
use swinface_data::error::DataError;
use swinface_data::streams::{
    age_gender_stream, celeba_train_stream, expression_stream, DataConfig, Phase, PyRandom,
};

/// The official composition loops, condensed from `AgeGenderDataset`, `ExpressionDataset` and
/// `CelebADataset(choose="train")`: same loop nesting, same `>=` / `==` tests, same lists.
const OFFICIAL: &str = r#"
import json, os, random, sys
import numpy as np
c = json.load(open(sys.argv[1]))
out = {}

def age_gender(dataset):
    root = c['age_gender_data_path']
    sample_num = c['num_image'] // c['recognition_bz'] * c['age_gender_bz']
    weight = {'Adience': 0.25, 'MORPH': 0.25}
    image_paths, labels = [], []
    def read(name):
        with open(os.path.join(root, name, 'label.txt'), 'r') as f:
            return f.readlines()
    def row(name, line, target):
        image_path = os.path.join(root, name, 'data', line[0])
        if not (line[1] == 'nan' or line[2] == 'nan'):
            label = [0.0, 0]
            image_paths.append(image_path)
            label[0] = np.asarray([float(line[1])])
            if line[2] == '1.0':
                label[1] = 1
            target.append(label)
    phase_lists = []
    for name in ('Adience', 'MORPH'):
        flag = True
        lst = []
        while flag:
            if name in dataset and flag:
                data = read(name)
                for i in range(1, len(data)):
                    line = data[i].split()
                    if len(line) > 0:
                        row(name, line, lst)
                    if len(lst) >= sample_num * weight[name]:
                        flag = False
                        break
        phase_lists.append(lst)
    labels.extend(phase_lists[0])
    labels.extend(phase_lists[1])
    flag = True
    while flag:
        for name in ('WIKI', 'IMDB'):
            if name in dataset and flag:
                data = read(name)
                for i in range(1, len(data)):
                    line = data[i].split()
                    if len(line) > 0:
                        row(name, line, labels)
                    if len(labels) == sample_num:
                        flag = False
                        break
    return [[p, float(l[0][0]), l[1]] for p, l in zip(image_paths, labels)]

def expression():
    sample_num = c['num_image'] // c['recognition_bz'] * c['expression_bz']
    image_paths, labels = [], []
    with open(c['AffectNet_label'], 'r') as f:
        data = f.readlines()
    flag = True
    while flag:
        for i in range(1, len(data)):
            line = data[i].split()
            image_paths.append(os.path.join(c['AffectNet_data'], line[0]))
            labels.append(int(line[2]))
            if len(labels) >= sample_num * 0.5:
                flag = False
                break
    with open(c['RAF_label'], 'r') as f:
        data = f.readlines()
    flag = True
    while flag:
        for i in range(0, len(data)):
            line = data[i].strip('\n').split(' ')
            image_name = line[0]
            if image_name.split('_')[0] == 'train':
                image_paths.append(os.path.join(c['RAF_data'], image_name))
                labels.append(int(line[1]) - 1)
            if len(labels) == sample_num:
                flag = False
                break
    return [[p, l] for p, l in zip(image_paths, labels)]

def celeba():
    random.seed(c['seed'])
    sample_num = c['num_image'] // c['recognition_bz'] * c['CelebA_bz']
    names, labels = [], []
    with open(c['CelebA_train_label'], 'r') as f:
        data = f.readlines()
    flag = True
    while flag:
        for i in range(1, len(data)):
            r = random.random()
            if r < 0.5:
                line = data[i].split()
                names.append(line[0])
                label = [0 for j in range(40)]
                for j in range(1, 41):
                    if line[j] == '1':
                        label[j - 1] = 1
                labels.append(label)
                if len(labels) == sample_num:
                    flag = False
                    break
    return [[os.path.join(c['CelebA_train_data'], n), l] for n, l in zip(names, labels)]

out['age_gender'] = age_gender(c['age_gender_data_list'])
out['expression'] = expression()
out['celeba'] = celeba()
print(json.dumps(out))
"#;

/// xorshift64*, for label files that differ per case.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Writes label files of every stream source under `root` (with `nan` rows, blank lines, RAF
/// test rows) and returns a config pointing at them.
fn write_sources(root: &Path, rng: &mut Rng) -> DataConfig {
    let ag = root.join("AIO_train");
    for (name, rows) in [("Adience", 7), ("MORPH", 5), ("WIKI", 4), ("IMDB", 6)] {
        let mut text = String::from("name age gender\n");
        for i in 0..rows {
            let age = if rng.below(5) == 0 {
                "nan".to_owned()
            } else {
                format!("{}.0", 1 + rng.below(90))
            };
            let gender = ["1.0", "0.0", "nan", "1"][rng.below(4) as usize];
            writeln!(text, "{name}_{i}.jpg {age} {gender}").unwrap();
            if rng.below(6) == 0 {
                text.push('\n');
            }
        }
        // Every source needs a usable row.
        writeln!(text, "{name}_last.jpg 33 1.0").unwrap();
        write(&ag.join(name).join("label.txt"), &text);
    }
    let mut affect = String::from("name x label\n");
    for i in 0..5 {
        writeln!(affect, "aff_{i}.jpg 0 {}", rng.below(7)).unwrap();
    }
    write(&root.join("AffectNet/label.txt"), &affect);
    let mut raf = String::new();
    for i in 0..10 {
        let split = if rng.below(3) == 0 { "test" } else { "train" };
        writeln!(raf, "{split}_{i:05}.jpg {}", 1 + rng.below(7)).unwrap();
    }
    writeln!(raf, "train_last.jpg 4").unwrap();
    write(&root.join("RAF/list_patition_label.txt"), &raf);
    let mut celeba = String::from("header\n");
    for i in 0..9 {
        let values: Vec<&str> = (0..40)
            .map(|_| ["1", "-1", "0"][rng.below(3) as usize])
            .collect();
        writeln!(celeba, "{i:06}.jpg {}", values.join(" ")).unwrap();
    }
    write(&root.join("CelebA/label.txt"), &celeba);
    DataConfig {
        age_gender_data_path: Some(ag),
        affectnet_data: Some(root.join("AffectNet/data")),
        affectnet_label: Some(root.join("AffectNet/label.txt")),
        raf_data: Some(root.join("RAF/data")),
        raf_label: Some(root.join("RAF/list_patition_label.txt")),
        celeba_train_data: Some(root.join("CelebA/data")),
        celeba_train_label: Some(root.join("CelebA/label.txt")),
        ..DataConfig::default()
    }
}

fn config_json(c: &DataConfig) -> String {
    let p =
        |p: &Option<std::path::PathBuf>| format!("{:?}", p.as_ref().unwrap().display().to_string());
    format!(
        r#"{{"num_image": {}, "recognition_bz": {}, "age_gender_bz": {}, "expression_bz": {}, "CelebA_bz": {},
           "seed": {}, "age_gender_data_path": {}, "age_gender_data_list": {:?}, "AffectNet_data": {},
           "AffectNet_label": {}, "RAF_data": {}, "RAF_label": {}, "CelebA_train_data": {}, "CelebA_train_label": {}}}"#,
        c.num_image,
        c.recognition_bz,
        c.age_gender_bz,
        c.expression_bz,
        c.celeba_bz,
        c.seed,
        p(&c.age_gender_data_path),
        c.age_gender_data_list,
        p(&c.affectnet_data),
        p(&c.affectnet_label),
        p(&c.raf_data),
        p(&c.raf_label),
        p(&c.celeba_train_data),
        p(&c.celeba_train_label),
    )
}

/// Composes all three streams in Rust and in the official Python loops; they must agree
/// sample for sample.
fn compare_with_python(name: &str, config: &DataConfig) -> (usize, usize, usize) {
    let dir = scratch_dir(name);
    let json = dir.join("config.json");
    std::fs::write(&json, config_json(config)).unwrap();
    let out = run_python(OFFICIAL, &[&json]);

    let mut rust = String::from("{\"age_gender\": [");
    let ag = age_gender_stream(config).unwrap();
    let items: Vec<String> = (0..ag.len())
        .map(|i| {
            let (path, l) = ag.get(i).unwrap();
            format!(
                "[{:?}, {:?}, {}]",
                path.display().to_string(),
                f64::from(l.age),
                l.gender
            )
        })
        .collect();
    rust.push_str(&items.join(", "));
    rust.push_str("], \"expression\": [");
    let ex = expression_stream(config).unwrap();
    let items: Vec<String> = (0..ex.len())
        .map(|i| {
            let (path, l) = ex.get(i).unwrap();
            format!("[{:?}, {l}]", path.display().to_string())
        })
        .collect();
    rust.push_str(&items.join(", "));
    rust.push_str("], \"celeba\": [");
    let ce = celeba_train_stream(config).unwrap();
    let items: Vec<String> = (0..ce.len())
        .map(|i| {
            let (path, l) = ce.get(i).unwrap();
            let l: Vec<String> = l.iter().map(|v| v.to_string()).collect();
            format!("[{:?}, [{}]]", path.display().to_string(), l.join(", "))
        })
        .collect();
    rust.push_str(&items.join(", "));
    rust.push_str("]}");
    // Python's json writes floats like 33.0 and Rust's {:?} of f64 too.
    assert_eq!(
        rust.trim(),
        out.trim(),
        "{name}: Rust and the official loops differ"
    );
    (ag.len(), ex.len(), ce.len())
}

#[test]
fn compositions_equal_the_official_loops() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases: [(u64, u64, u64, u64, u64, i64, &[&str]); 5] = [
        (
            1000,
            100,
            7,
            5,
            6,
            2048,
            &["IMDB", "WIKI", "Adience", "MORPH"],
        ),
        (
            20000,
            32,
            32,
            32,
            32,
            2048,
            &["IMDB", "WIKI", "Adience", "MORPH"],
        ),
        (640, 64, 3, 1, 1, 0, &["IMDB", "Adience", "MORPH"]),
        (999, 10, 1, 3, 2, -12345, &["WIKI", "Adience", "MORPH"]),
        (
            300,
            7,
            2,
            4,
            5,
            1 << 40,
            &["IMDB", "WIKI", "Adience", "MORPH"],
        ),
    ];
    for (k, &(num_image, recognition_bz, ag_bz, ex_bz, ce_bz, seed, list)) in
        cases.iter().enumerate()
    {
        let root = scratch_dir(&format!("compose_sources_{k}"));
        let mut config = write_sources(&root, &mut rng);
        config.num_image = num_image;
        config.recognition_bz = recognition_bz;
        config.age_gender_bz = ag_bz;
        config.expression_bz = ex_bz;
        config.celeba_bz = ce_bz;
        config.seed = seed;
        config.age_gender_data_list = list.iter().map(|s| s.to_string()).collect();
        let (a, e, c) = compare_with_python(&format!("compose_{k}"), &config);
        let n = |bz: u64| (num_image / recognition_bz * bz) as usize;
        assert_eq!((a, e, c), (n(ag_bz), n(ex_bz), n(ce_bz)), "case {k}");
    }
}

#[test]
fn official_shares_hold_on_a_simple_case() {
    // Every row usable: Adience reaches ceil(0.25 N) exactly, MORPH too, the rest alternates
    // full passes of WIKI and IMDB.
    let root = scratch_dir("shares");
    for (name, rows) in [("Adience", 3), ("MORPH", 2), ("WIKI", 4), ("IMDB", 5)] {
        let mut text = String::from("h\n");
        for i in 0..rows {
            writeln!(text, "{name}{i}.jpg 20 0.0").unwrap();
        }
        write(&root.join(name).join("label.txt"), &text);
    }
    let config = DataConfig {
        num_image: 100,
        recognition_bz: 10,
        age_gender_bz: 3,
        age_gender_data_path: Some(root),
        ..DataConfig::default()
    };
    let stream = age_gender_stream(&config).unwrap();
    assert_eq!(stream.len(), 30);
    let counts = stream.counts_per_source();
    // 0.25 * 30 = 7.5 -> 8 each; 14 left: WIKI 4, IMDB 5, WIKI 4, IMDB 1.
    assert_eq!(
        counts,
        [("Adience", 8), ("MORPH", 8), ("WIKI", 8), ("IMDB", 6)]
    );
    let names: Vec<String> = (16..30)
        .map(|i| {
            stream
                .get(i)
                .unwrap()
                .0
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names[..5],
        [
            "WIKI0.jpg",
            "WIKI1.jpg",
            "WIKI2.jpg",
            "WIKI3.jpg",
            "IMDB0.jpg"
        ]
    );
    assert_eq!(names[13], "IMDB0.jpg");
}

#[test]
fn impossible_compositions_are_errors_not_endless_loops() {
    let root = scratch_dir("impossible");
    for name in ["Adience", "MORPH", "WIKI", "IMDB"] {
        write(
            &root.join(name).join("label.txt"),
            &format!("h\n{name}.jpg 20 1.0\n"),
        );
    }
    let base = DataConfig {
        num_image: 100,
        recognition_bz: 10,
        age_gender_bz: 3,
        age_gender_data_path: Some(root.clone()),
        ..DataConfig::default()
    };
    // Only `nan` rows: the official loop never ends.
    write(&root.join("MORPH/label.txt"), "h\na.jpg nan 1.0\n\n");
    let err = message(&age_gender_stream(&base).unwrap_err());
    assert!(
        err.contains("age_gender stream: sources [\"MORPH\"] have no usable rows"),
        "{err}"
    );
    write(&root.join("MORPH/label.txt"), "h\nMORPH.jpg 20 1.0\n");
    // N = 1: the shares already give 2 samples, `== 1` never holds.
    let tiny = DataConfig {
        num_image: 10,
        age_gender_bz: 1,
        ..base.clone()
    };
    let err = message(&age_gender_stream(&tiny).unwrap_err());
    assert!(err.contains("more than N = 1"), "{err}");
    // A phase whose sources are all disabled.
    let no_morph = DataConfig {
        age_gender_data_list: vec!["IMDB".into(), "Adience".into()],
        ..base.clone()
    };
    let err = message(&age_gender_stream(&no_morph).unwrap_err());
    assert!(
        err.contains("phase [\"MORPH\"] has no enabled source"),
        "{err}"
    );
    // N = 0.
    let zero = DataConfig {
        num_image: 5,
        ..base.clone()
    };
    assert!(message(&age_gender_stream(&zero).unwrap_err()).contains("is 0 (5 // 10 * 3)"));
    // Missing label file and missing config key.
    let missing = DataConfig {
        age_gender_data_path: Some(root.join("nope")),
        ..base.clone()
    };
    assert!(matches!(
        age_gender_stream(&missing),
        Err(DataError::Missing { .. })
    ));
    let unset = DataConfig {
        age_gender_data_path: None,
        ..base
    };
    assert!(message(&age_gender_stream(&unset).unwrap_err())
        .contains("age_gender_data_path is not set"));
}

#[test]
fn py_random_equals_cpython() {
    let seeds: [i128; 8] = [0, 1, 42, 2048, -7, 1 << 32, (1 << 40) + 5, i64::MAX as i128];
    let script = "import random, sys\nfor s in sys.argv[1:]:\n    random.seed(int(s))\n    print(' '.join(repr(random.random()) for _ in range(1500)))\n";
    let args: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    let arg_paths: Vec<&Path> = args.iter().map(Path::new).collect();
    let out = run_python(script, &arg_paths);
    for (seed, line) in seeds.iter().zip(out.lines()) {
        let mut rng = PyRandom::new(*seed);
        for (k, token) in line.split(' ').enumerate() {
            let expected: f64 = token.parse().unwrap();
            assert_eq!(
                rng.random().to_bits(),
                expected.to_bits(),
                "seed {seed}, draw {k}"
            );
        }
    }
}

#[test]
fn config_defaults_are_the_official_recipe() {
    let c = DataConfig::default();
    assert_eq!(
        (c.num_classes, c.num_image, c.img_size, c.seed),
        (85742, 5822653, 112, 2048)
    );
    assert_eq!(
        (
            c.recognition_bz,
            c.age_gender_bz,
            c.celeba_bz,
            c.expression_bz
        ),
        (32, 32, 32, 32)
    );
    assert_eq!(
        c.val_targets,
        ["lfw", "cfp_fp", "agedb_30", "calfw", "cplfw"]
    );
    assert_eq!(c.age_gender_data_list, ["IMDB", "WIKI", "Adience", "MORPH"]);
    assert_eq!(c.celeba_keep_probability, 0.5);
    assert_eq!(c.age_gender_phases.len(), 3);
    assert_eq!(
        c.age_gender_phases[2],
        Phase {
            sources: vec!["WIKI".into(), "IMDB".into()],
            share: None
        }
    );
    let keys = DataConfig::keys();
    for key in [
        "rec",
        "CelebA_train_label",
        "FGnet_data",
        "CLAP_test_label",
        "LAP_test_data",
        "CelebA_bz",
        "age_gender_phases",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
}

#[test]
fn config_reads_only_its_keys_from_a_full_training_yaml() {
    let yaml = r#"
network: swin_t
lr: 0.0005
rec: /data/faces_emore
num_classes: 1000
num_image: 20000
recognition_bz: 64
CelebA_bz: 16
CelebA_train_label: /data/CelebA/label.txt
val_targets: [lfw]
expression_phases:
  - {sources: [RAF], share: 0.3}
  - {sources: [AffectNet]}
"#;
    let c = DataConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(c.rec.as_deref(), Some(Path::new("/data/faces_emore")));
    assert_eq!(
        (c.num_classes, c.num_image, c.recognition_bz, c.celeba_bz),
        (1000, 20000, 64, 16)
    );
    assert_eq!(c.age_gender_bz, 32);
    assert_eq!(c.stream_samples(c.celeba_bz), 20000 / 64 * 16);
    assert_eq!(c.expression_phases[0].share, Some(0.3));
    // Deserialized on its own, an unknown key is an error.
    let err = serde_yaml::from_str::<DataConfig>("recogniton_bz: 3\n").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `recogniton_bz`"),
        "{err}"
    );
    for (yaml, expected) in [
        ("recognition_bz: 0\n", "recognition_bz must be at least 1"),
        ("age_gender_phases: [{sources: [A], share: 0.5}]\n", "the last phase must have no share"),
        ("age_gender_phases: [{sources: [A], share: 0.7}, {sources: [B], share: 0.7}, {sources: [C]}]\n", "over 1"),
        ("expression_phases: [{sources: [FER]}]\n", "unknown source \"FER\""),
        ("CelebA_keep_probability: 2\n", "outside [0, 1]"),
        ("recognition_bz: many\n", "invalid YAML config"),
        ("- a\n- b\n", "top level must be a map"),
        ("age_gender_phases: [{sources: [A], weight: 1}]\n", "unknown field `weight`"),
    ] {
        let err = message(&DataConfig::from_yaml_str(yaml).unwrap_err());
        assert!(err.contains(expected), "{yaml}: {err}");
    }
}

/// How the trainer embeds the data keys in its own config: `#[serde(flatten)]` takes the data
/// keys and leaves the others to the outer struct.
#[test]
fn config_flattens_into_a_larger_config() {
    #[derive(serde::Deserialize)]
    struct TrainConfig {
        network: String,
        #[serde(flatten)]
        data: DataConfig,
    }
    let c: TrainConfig =
        serde_yaml::from_str("network: swin_t\nnum_image: 640\nseed: -3\nCelebA_bz: 8\nrec: /x\n")
            .unwrap();
    assert_eq!(c.network, "swin_t");
    assert_eq!(
        (c.data.num_image, c.data.seed, c.data.celeba_bz),
        (640, -3, 8)
    );
    assert_eq!(c.data.rec.as_deref(), Some(Path::new("/x")));
    assert_eq!(c.data.recognition_bz, 32);
    c.data.validate().unwrap();
}
