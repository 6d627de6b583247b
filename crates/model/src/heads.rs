//! Output module (official `OutputModule`, state-dict prefix `om.`): 42 linear heads on
//! the task-specific features, returned with the recognition embedding in the official
//! output order.

use tch::{nn, Tensor};

use crate::config::ConfigError;
use crate::layers::Linear;
use crate::ModelError;

/// Number of FAM branches / task-specific subnets (task groups).
pub const BRANCH_NUM: usize = 11;

/// The 43 outputs, in the official output order (`OutputModule.task_names`).
pub const TASK_NAMES: [&str; 43] = [
    "Age",
    "Attractive",
    "Blurry",
    "Chubby",
    "Heavy Makeup",
    "Gender",
    "Oval Face",
    "Pale Skin",
    "Smiling",
    "Young",
    "Bald",
    "Bangs",
    "Black Hair",
    "Blond Hair",
    "Brown Hair",
    "Gray Hair",
    "Receding Hairline",
    "Straight Hair",
    "Wavy Hair",
    "Wearing Hat",
    "Arched Eyebrows",
    "Bags Under Eyes",
    "Bushy Eyebrows",
    "Eyeglasses",
    "Narrow Eyes",
    "Big Nose",
    "Pointy Nose",
    "High Cheekbones",
    "Rosy Cheeks",
    "Wearing Earrings",
    "Sideburns",
    "Five O'Clock Shadow",
    "Big Lips",
    "Mouth Slightly Open",
    "Mustache",
    "Wearing Lipstick",
    "No Beard",
    "Double Chin",
    "Goatee",
    "Wearing Necklace",
    "Wearing Necktie",
    "Expression",
    "Recognition",
];

/// Classes of the expression head (RAF-DB order).
pub const EXPRESSION_LABELS: [&str; 7] = [
    "Surprise",
    "Fear",
    "Disgust",
    "Happiness",
    "Sadness",
    "Anger",
    "Neutral",
];

/// Classes of the gender head.
pub const GENDER_LABELS: [&str; 2] = ["female", "male"];

/// Parameter-name prefix of the age head (`om.output_fcs.1.weight` and `.bias`: "Age" is
/// second in the construction order below), for the optimizer's age-head group.
pub const AGE_HEAD_PREFIX: &str = "om.output_fcs.1.";

/// The heads of each branch, in construction order (the order of `om.output_fcs.k`):
/// (task name, output width).
pub const BRANCH_HEADS: [&[(&str, i64)]; BRANCH_NUM] = [
    &[("Gender", 2)],
    &[("Age", 1), ("Young", 2)],
    &[("Expression", 7), ("Smiling", 2)],
    &[
        ("Attractive", 2),
        ("Blurry", 2),
        ("Chubby", 2),
        ("Heavy Makeup", 2),
        ("Oval Face", 2),
        ("Pale Skin", 2),
    ],
    &[
        ("Bald", 2),
        ("Bangs", 2),
        ("Black Hair", 2),
        ("Blond Hair", 2),
        ("Brown Hair", 2),
        ("Gray Hair", 2),
        ("Receding Hairline", 2),
        ("Straight Hair", 2),
        ("Wavy Hair", 2),
        ("Wearing Hat", 2),
    ],
    &[
        ("Arched Eyebrows", 2),
        ("Bags Under Eyes", 2),
        ("Bushy Eyebrows", 2),
        ("Eyeglasses", 2),
        ("Narrow Eyes", 2),
    ],
    &[("Big Nose", 2), ("Pointy Nose", 2)],
    &[
        ("High Cheekbones", 2),
        ("Rosy Cheeks", 2),
        ("Wearing Earrings", 2),
        ("Sideburns", 2),
    ],
    &[
        ("Five O'Clock Shadow", 2),
        ("Big Lips", 2),
        ("Mouth Slightly Open", 2),
        ("Mustache", 2),
        ("Wearing Lipstick", 2),
        ("No Beard", 2),
    ],
    &[("Double Chin", 2), ("Goatee", 2)],
    &[("Wearing Necklace", 2), ("Wearing Necktie", 2)],
];

/// Where one output of the official order comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSpec {
    pub name: &'static str,
    /// Position in [`TASK_NAMES`].
    pub output_index: usize,
    /// FAM / subnet branch feeding the head; `None` for Recognition (the embedding).
    pub branch: Option<usize>,
    /// `k` of `om.output_fcs.k`; `None` for Recognition.
    pub fc_index: Option<usize>,
    /// Output width; `None` for Recognition (the embedding size).
    pub classes: Option<i64>,
}

/// Position of a task in the official output order.
pub fn task_index(name: &str) -> Option<usize> {
    TASK_NAMES.iter().position(|&n| n == name)
}

/// The 43 outputs in the official order with their branch and head.
pub fn head_specs() -> Vec<HeadSpec> {
    let mut fc_of = Vec::new();
    let mut k = 0;
    for (branch, heads) in BRANCH_HEADS.iter().enumerate() {
        for &(name, classes) in heads.iter() {
            fc_of.push((name, branch, k, classes));
            k += 1;
        }
    }
    TASK_NAMES
        .iter()
        .enumerate()
        .map(|(output_index, &name)| {
            let found = fc_of.iter().find(|entry| entry.0 == name);
            HeadSpec {
                name,
                output_index,
                branch: found.map(|e| e.1),
                fc_index: found.map(|e| e.2),
                classes: found.map(|e| e.3),
            }
        })
        .collect()
}

/// The 42 heads `om.output_fcs.k`.
#[derive(Debug)]
pub struct OutputModule {
    fcs: Vec<Linear>,
    /// For each output of the official order but the last (Recognition): its head index.
    order: Vec<usize>,
    /// Branch read by head k.
    branch_of_fc: Vec<usize>,
}

impl OutputModule {
    /// Builds the heads under `path` (normally `root / "om"`) reading `dim`-wide features.
    pub fn new(path: &nn::Path, dim: i64) -> Result<Self, ModelError> {
        if dim <= 0 {
            return Err(ConfigError::NotPositive {
                name: "fam_feature_dim",
                value: dim,
            }
            .into());
        }
        let fcs_path = path / "output_fcs";
        let mut fcs = Vec::new();
        let mut branch_of_fc = Vec::new();
        for (branch, heads) in BRANCH_HEADS.iter().enumerate() {
            for &(_, classes) in heads.iter() {
                fcs.push(Linear::new(&(&fcs_path / fcs.len()), dim, classes, true));
                branch_of_fc.push(branch);
            }
        }
        let order = head_specs()
            .iter()
            .filter_map(|spec| spec.fc_index)
            .collect();
        Ok(Self {
            fcs,
            order,
            branch_of_fc,
        })
    }

    /// x: [branches, B, D], embedding: [B, E] -> 43 tensors in [`TASK_NAMES`] order
    /// ([B, classes] each, the embedding last).
    pub fn forward(&self, x: &Tensor, embedding: &Tensor) -> Vec<Tensor> {
        let mut outputs: Vec<Tensor> = self
            .order
            .iter()
            .map(|&k| self.fcs[k].forward(&x.get(self.branch_of_fc[k] as i64)))
            .collect();
        outputs.push(embedding.shallow_clone());
        outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn head_table_matches_the_official_layout() {
        let specs = head_specs();
        assert_eq!(specs.len(), 43);
        let fcs: Vec<usize> = specs.iter().filter_map(|s| s.fc_index).collect();
        // Every head exactly once.
        let mut sorted = fcs.clone();
        sorted.sort();
        assert_eq!(sorted, (0..42).collect::<Vec<_>>());
        // From the official unpacking: gender=0, age=1, young=2, expression=3, smiling=4,
        // attractive=5, wearing_necktie=41.
        let fc = |name: &str| specs[task_index(name).unwrap()].fc_index.unwrap();
        assert_eq!(
            [
                fc("Gender"),
                fc("Age"),
                fc("Young"),
                fc("Expression"),
                fc("Smiling"),
                fc("Attractive")
            ],
            [0, 1, 2, 3, 4, 5]
        );
        assert_eq!(fc("Wearing Necktie"), 41);
        assert_eq!(AGE_HEAD_PREFIX, format!("om.output_fcs.{}.", fc("Age")));
        assert_eq!(fc("Sideburns"), 31);
        assert_eq!(specs[42].branch, None);
        assert_eq!(specs[0].classes, Some(1));
        assert_eq!(specs[41].classes, Some(7));
        let sizes: Vec<usize> = BRANCH_HEADS.iter().map(|h| h.len()).collect();
        assert_eq!(sizes, [1, 2, 2, 6, 10, 5, 2, 4, 6, 2, 2]);
    }

    #[test]
    fn outputs_come_in_official_order_from_the_right_branch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let om = OutputModule::new(&(vs.root() / "om"), 4).unwrap();
        let vars = vs.variables();
        assert_eq!(vars["om.output_fcs.3.weight"].size(), [7, 4]);
        assert_eq!(vars["om.output_fcs.1.bias"].size(), [1]);
        let x = Tensor::randn([11, 2, 4], (Kind::Float, Device::Cpu));
        let embedding = Tensor::randn([2, 6], (Kind::Float, Device::Cpu));
        let out = om.forward(&x, &embedding);
        assert_eq!(out.len(), 43);
        // "Expression" (output 41) is head 3 applied to branch 2.
        let expected = x.get(2).linear(
            &vars["om.output_fcs.3.weight"],
            Some(&vars["om.output_fcs.3.bias"]),
        );
        assert_eq!(
            f64::try_from((&out[41] - expected).abs().max()).unwrap(),
            0.0
        );
        assert_eq!(out[0].size(), [2, 1]);
        assert_eq!(
            f64::try_from((&out[42] - &embedding).abs().max()).unwrap(),
            0.0
        );
    }
}
