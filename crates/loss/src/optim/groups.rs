//! Parameter groups: which tensors an optimizer updates, at what learning-rate scale and decay.

use std::collections::{HashMap, HashSet};

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{LossError, Result};

/// Parameters updated together. The group's learning rate is the schedule evaluated for a base
/// rate of `lr · lr_scale` (the official backbone group runs at `lr / 10`).
#[derive(Debug)]
pub struct ParamGroup {
    pub name: String,
    /// (name, parameter): the parameter is a shallow clone sharing storage with the model's.
    pub params: Vec<(String, Tensor)>,
    pub lr_scale: f64,
    pub weight_decay: f64,
}

impl ParamGroup {
    pub fn new(
        name: impl Into<String>,
        params: Vec<(String, Tensor)>,
        lr_scale: f64,
        weight_decay: f64,
    ) -> Self {
        Self {
            name: name.into(),
            params,
            lr_scale,
            weight_decay,
        }
    }

    /// The trainable variables that the model registered in VarStore group `group`
    /// (`Path::set_group`), in registration order, with their VarStore names.
    pub fn from_var_store(
        vs: &VarStore,
        group: usize,
        name: impl Into<String>,
        lr_scale: f64,
        weight_decay: f64,
    ) -> Result<Self> {
        let variables = vs
            .variables_
            .lock()
            .map_err(|_| LossError::VarStorePoisoned)?;
        // VarStore keeps names and groups in two collections; the storage address links them.
        let names_by_address: HashMap<(usize, Vec<i64>), &String> = variables
            .named_variables
            .iter()
            .map(|(name, tensor)| ((tensor.data_ptr() as usize, tensor.size()), name))
            .collect();
        let mut params = Vec::new();
        for var in variables
            .trainable_variables
            .iter()
            .filter(|v| v.group == group)
        {
            let key = (var.tensor.data_ptr() as usize, var.tensor.size());
            let var_name = names_by_address
                .get(&key)
                .ok_or_else(|| LossError::InvalidConfig {
                    field: "var_store",
                    reason: "a trainable variable has no name in the VarStore".into(),
                })?;
            params.push(((*var_name).clone(), var.tensor.shallow_clone()));
        }
        Ok(Self::new(name, params, lr_scale, weight_decay))
    }

    /// Splits off the parameters that the usual "no weight decay" rule exempts (norm weights
    /// and other 1-D tensors, biases, relative-position bias tables) into a second group
    /// `<name>.no_decay` with weight decay 0. The official code decays every parameter.
    pub fn split_decay_exempt(self) -> (ParamGroup, ParamGroup) {
        let (exempt, decayed): (Vec<_>, Vec<_>) = self
            .params
            .into_iter()
            .partition(|(name, tensor)| is_decay_exempt(name, tensor));
        (
            ParamGroup::new(self.name.clone(), decayed, self.lr_scale, self.weight_decay),
            ParamGroup::new(
                format!("{}.no_decay", self.name),
                exempt,
                self.lr_scale,
                0.0,
            ),
        )
    }
}

/// 1-D tensors (norm weights, biases), anything named `bias`, relative-position bias tables.
pub fn is_decay_exempt(name: &str, tensor: &Tensor) -> bool {
    tensor.dim() <= 1
        || name.ends_with(".bias")
        || name == "bias"
        || name.contains("relative_position_bias_table")
}

/// Fails on a parameter name used twice (state entries are keyed by group and name).
pub(crate) fn check_unique_names(groups: &[ParamGroup]) -> Result<()> {
    let mut seen = HashSet::new();
    for group in groups {
        for (name, _) in &group.params {
            if !seen.insert(format!("{}.{}", group.name, name)) {
                return Err(LossError::DuplicateParameter { name: name.clone() });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};
    use tch::Device;

    #[test]
    fn var_store_groups_keep_names_and_order() {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let backbone = root.set_group(0);
        let heads = root.set_group(1);
        let l1 = nn::linear(&backbone / "backbone" / "l1", 3, 4, Default::default());
        let table = (&backbone / "backbone").var(
            "relative_position_bias_table",
            &[5, 2],
            nn::Init::Const(0.0),
        );
        let l2 = nn::linear(&heads / "om" / "l2", 4, 2, Default::default());
        let _ = (
            l1.forward(&Tensor::zeros([1, 3], tch::kind::FLOAT_CPU)),
            l2,
            table,
        );

        let g0 = ParamGroup::from_var_store(&vs, 0, "backbone", 0.1, 0.05).unwrap();
        let names: Vec<&str> = g0.params.iter().map(|(n, _)| n.as_str()).collect();
        // Registration order (tch's linear registers its bias first).
        assert_eq!(
            names,
            [
                "backbone.l1.bias",
                "backbone.l1.weight",
                "backbone.relative_position_bias_table"
            ]
        );
        let g1 = ParamGroup::from_var_store(&vs, 1, "heads", 1.0, 0.05).unwrap();
        let names: Vec<&str> = g1.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["om.l2.bias", "om.l2.weight"]);

        let (decayed, exempt) = g0.split_decay_exempt();
        assert_eq!(decayed.params.len(), 1);
        assert_eq!(exempt.params.len(), 2);
        assert_eq!(exempt.name, "backbone.no_decay");
        assert_eq!(exempt.weight_decay, 0.0);
        assert_eq!(decayed.lr_scale, 0.1);
    }
}
