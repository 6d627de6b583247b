//! Task-specific subnets (official `TaskSpecificSubnets`, state-dict prefix `tss.`): one
//! two-layer MLP per FAM branch.

use tch::{nn, Tensor};

use crate::config::ConfigError;
use crate::layers::{dropout, Linear};
use crate::ModelError;

/// Official dropout of the subnets.
pub const TSS_DROP_RATE: f64 = 0.5;

/// Linear, ReLU, Dropout, Linear, ReLU, Dropout (keys `feature.0`, `feature.3`).
#[derive(Debug)]
struct TaskSpecificSubnet {
    fc1: Linear,
    fc2: Linear,
    drop: f64,
}

impl TaskSpecificSubnet {
    fn new(path: &nn::Path, dim: i64, drop: f64) -> Self {
        let feature = path / "feature";
        Self {
            fc1: Linear::new(&(&feature / "0"), dim, dim, true),
            fc2: Linear::new(&(&feature / "3"), dim, dim, true),
            drop,
        }
    }

    /// x: [B, D] -> [B, D]
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = dropout(&self.fc1.forward(x).relu(), self.drop, train);
        dropout(&self.fc2.forward(&x).relu(), self.drop, train)
    }
}

/// All subnets; subnet i reads FAM branch i.
#[derive(Debug)]
pub struct TaskSpecificSubnets {
    nets: Vec<TaskSpecificSubnet>,
}

impl TaskSpecificSubnets {
    /// Builds `branch_num` subnets of width `dim` under `path` (normally `root / "tss"`).
    pub fn new(
        path: &nn::Path,
        branch_num: usize,
        dim: i64,
        drop: f64,
    ) -> Result<Self, ModelError> {
        if dim <= 0 {
            return Err(ConfigError::NotPositive {
                name: "fam_feature_dim",
                value: dim,
            }
            .into());
        }
        if !(0.0..1.0).contains(&drop) {
            return Err(ConfigError::BadRate {
                name: "tss_drop_rate",
                value: drop,
            }
            .into());
        }
        let nets = (0..branch_num)
            .map(|i| TaskSpecificSubnet::new(&(path / "nets" / i), dim, drop))
            .collect();
        Ok(Self { nets })
    }

    /// x: [branches, B, D] -> [branches, B, D]
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let outputs: Vec<Tensor> = self
            .nets
            .iter()
            .enumerate()
            .map(|(i, net)| net.forward_t(&x.get(i as i64), train))
            .collect();
        Tensor::stack(&outputs, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn subnet_i_reads_branch_i_and_dropout_acts_only_in_train() {
        let vs = nn::VarStore::new(Device::Cpu);
        let tss = TaskSpecificSubnets::new(&(vs.root() / "tss"), 3, 8, 0.5).unwrap();
        assert_eq!(vs.variables()["tss.nets.2.feature.3.bias"].size(), [8]);
        let x = Tensor::randn([3, 4, 8], (Kind::Float, Device::Cpu));
        let y = tss.forward_t(&x, false);
        let single = tss.nets[1].forward_t(&x.get(1), false);
        assert_eq!(f64::try_from((y.get(1) - single).abs().max()).unwrap(), 0.0);
        // Eval is deterministic; train is not.
        assert_eq!(
            f64::try_from((tss.forward_t(&x, false) - &y).abs().max()).unwrap(),
            0.0
        );
        let big = Tensor::ones([3, 256, 8], (Kind::Float, Device::Cpu));
        let a = tss.forward_t(&big, true);
        let b = tss.forward_t(&big, true);
        assert!(f64::try_from((a - b).abs().max()).unwrap() > 0.0);
    }
}
