//! The assembled model (official `ModelBox`): backbone -> FAM -> subnets -> heads.

use std::sync::Arc;

use swinface_torch_ext::{autocast_region, Autocast, SumReducer};
use tch::{nn, Kind, Tensor};

use crate::config::SwinFaceConfig;
use crate::fam::{FamFeature, FeatureAttentionModule};
use crate::heads::{task_index, OutputModule, BRANCH_NUM};
use crate::layers::BatchNormSync;
use crate::subnets::TaskSpecificSubnets;
use crate::swin::SwinTransformer;
use crate::ModelError;

/// Optimizer parameter group of the backbone (trained at lr / 10 in the official recipe).
pub const BACKBONE_GROUP: usize = 0;
/// Parameter group of FAM, subnets and heads.
pub const HEADS_GROUP: usize = 1;

/// Everything one forward pass computes.
#[derive(Debug)]
pub struct SwinFaceOutput {
    /// [B, 1344, 7, 7] for the released model.
    pub local_features: Tensor,
    /// [B, 768, 7, 7].
    pub global_features: Tensor,
    /// [B, embedding_size].
    pub embedding: Tensor,
    /// [11, B, fam_feature_dim]: FAM branch outputs.
    pub fam: Tensor,
    /// [11, B, fam_feature_dim]: task-specific subnet outputs.
    pub tss: Tensor,
    /// 43 outputs in [`crate::TASK_NAMES`] order; the last is the embedding.
    pub heads: Vec<Tensor>,
}

impl SwinFaceOutput {
    /// The output named as in the official dict (`"Age"`, `"Five O'Clock Shadow"`,
    /// `"Recognition"`, ...).
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        task_index(name).and_then(|i| self.heads.get(i))
    }
}

/// SwinFace: variables under `backbone.`, `fam.`, `tss.`, `om.` with the official keys.
#[derive(Debug)]
pub struct SwinFace {
    backbone: SwinTransformer,
    fam: FeatureAttentionModule,
    tss: TaskSpecificSubnets,
    om: OutputModule,
    cfg: SwinFaceConfig,
    autocast: Option<Autocast>,
    /// Shared by every BatchNorm of the model.
    batch_norm_sync: BatchNormSync,
}

impl SwinFace {
    /// Builds the model under `root`. The backbone's parameters go to optimizer group
    /// [`BACKBONE_GROUP`], the rest to [`HEADS_GROUP`].
    pub fn new(root: &nn::Path, cfg: &SwinFaceConfig) -> Result<Self, ModelError> {
        cfg.validate()?;
        let backbone_root = root.set_group(BACKBONE_GROUP);
        let heads_root = root.set_group(HEADS_GROUP);
        let batch_norm_sync = BatchNormSync::default();
        let backbone = SwinTransformer::with_batch_norm_sync(
            &(&backbone_root / "backbone"),
            &cfg.swin,
            cfg.embedding_size,
            &batch_norm_sync,
        )?;
        let fam = FeatureAttentionModule::with_batch_norm_sync(
            &(&heads_root / "fam"),
            &cfg.fam_config(),
            &batch_norm_sync,
        )?;
        let tss = TaskSpecificSubnets::new(
            &(&heads_root / "tss"),
            BRANCH_NUM,
            cfg.fam_feature_dim,
            cfg.tss_drop_rate,
        )?;
        let om = OutputModule::new(&(&heads_root / "om"), cfg.fam_feature_dim)?;
        Ok(Self {
            backbone,
            fam,
            tss,
            om,
            cfg: cfg.clone(),
            autocast: None,
            batch_norm_sync,
        })
    }

    /// Synchronised BatchNorm (`nn.SyncBatchNorm`) for data-parallel training: with a
    /// reducer, every BatchNorm of the model (backbone and FAM) normalises a training batch
    /// with the statistics of the batch combined over the ranks, and its backward sums the
    /// gradient statistics over them too. `None` (the default): each rank's own batch. Eval
    /// mode never synchronises. A runtime setting, not part of the state dict.
    pub fn set_sync_batch_norm(&mut self, reducer: Option<Arc<dyn SumReducer>>) {
        self.batch_norm_sync.set(reducer);
    }

    /// Whether training-mode BatchNorms are synchronised.
    pub fn sync_batch_norm(&self) -> bool {
        self.batch_norm_sync.is_set()
    }

    /// Mixed precision as the official code does it: inside the Swin blocks the qkv and output
    /// projections and `norm2` + MLP autocast to the setting's dtype, the attention core runs
    /// in fp32, and everything else (patch embedding and merging, final norm, embedding head,
    /// FAM, subnets, heads) runs with autocast off. A runtime setting, not part of the
    /// architecture config; `None` (the default) leaves autocast alone: fp32 throughout.
    pub fn set_autocast(&mut self, autocast: Option<Autocast>) {
        self.autocast = autocast;
        self.backbone.set_autocast(autocast);
    }

    pub fn autocast(&self) -> Option<Autocast> {
        self.autocast
    }

    pub fn backbone(&self) -> &SwinTransformer {
        &self.backbone
    }

    pub fn config(&self) -> &SwinFaceConfig {
        &self.cfg
    }

    /// Checks that `x` is a float [B, in_chans, img_size, img_size] batch; [`Self::forward_t`]
    /// panics inside libtorch otherwise.
    pub fn check_input(&self, x: &Tensor) -> Result<(), ModelError> {
        let swin = &self.cfg.swin;
        let size = x.size();
        let shape_ok = size.len() == 4
            && size[0] > 0
            && size[1] == swin.in_chans
            && size[2] == swin.img_size
            && size[3] == swin.img_size;
        let kind = x.kind();
        if shape_ok
            && matches!(
                kind,
                Kind::Float | Kind::Half | Kind::BFloat16 | Kind::Double
            )
        {
            Ok(())
        } else {
            Err(ModelError::InputShape {
                channels: swin.in_chans,
                height: swin.img_size,
                width: swin.img_size,
                actual: size,
                kind: format!("{kind:?}"),
            })
        }
    }

    /// x: [B, 3, 112, 112] normalised images (`(pixel / 255 - 0.5) / 0.5`, RGB).
    ///
    /// # Panics
    /// On a libtorch error (a bad input: see [`Self::f_forward_t`]), or when a synchronised
    /// BatchNorm's collective fails.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> SwinFaceOutput {
        self.run(x, train)
            .unwrap_or_else(|e| panic!("SwinFace forward: {e}"))
    }

    /// [`Self::forward_t`] after [`Self::check_input`]; a synchronised BatchNorm's failing
    /// collective is an error too.
    pub fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<SwinFaceOutput, ModelError> {
        self.check_input(x)?;
        self.run(x, train)
    }

    fn run(&self, x: &Tensor, train: bool) -> Result<SwinFaceOutput, ModelError> {
        // One region around the whole pass: autocast off outside the blocks' own regions,
        // and the weight-cast cache kept until the pass ends.
        let _fp32 = autocast_region(self.autocast, false);
        let backbone = self.backbone.f_forward_t(x, train)?;
        let fam_input = match self.cfg.fam_feature {
            FamFeature::All => {
                Tensor::cat(&[&backbone.local_features, &backbone.global_features], 1)
            }
            FamFeature::Global => backbone.global_features.shallow_clone(),
            FamFeature::Local => backbone.local_features.shallow_clone(),
        };
        let fam = self.fam.f_forward_t(&fam_input, train)?;
        let tss = self.tss.forward_t(&fam, train);
        let heads = self.om.forward(&tss, &backbone.embedding);
        Ok(SwinFaceOutput {
            local_features: backbone.local_features,
            global_features: backbone.global_features,
            embedding: backbone.embedding,
            fam,
            tss,
            heads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn tiny_preset_runs_forward_and_backward() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SwinFaceConfig::tiny_demo();
        let model = SwinFace::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::randn([2, 3, 112, 112], (Kind::Float, Device::Cpu));
        let out = model.f_forward_t(&x, true).unwrap();
        assert_eq!(out.local_features.size(), [2, 64 + 128 + 256, 7, 7]);
        assert_eq!(out.global_features.size(), [2, 256, 7, 7]);
        assert_eq!(out.embedding.size(), [2, 128]);
        assert_eq!(out.fam.size(), [11, 2, 64]);
        assert_eq!(out.tss.size(), [11, 2, 64]);
        assert_eq!(out.heads.len(), 43);
        assert_eq!(out.get("Expression").map(|t| t.size()), Some(vec![2, 7]));
        assert_eq!(out.get("Age").map(|t| t.size()), Some(vec![2, 1]));
        assert!(out.get("Nope").is_none());

        let loss = out
            .heads
            .iter()
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |acc, t| {
                acc + t.square().mean(Kind::Float)
            });
        loss.backward();
        let vars = vs.variables();
        for name in [
            "backbone.patch_embed.proj.weight",
            "backbone.layers.0.blocks.1.attn.relative_position_bias_table",
            "backbone.feature.0.weight",
            "fam.nets.4.conv.convs.0.weight",
            "tss.nets.10.feature.0.weight",
            "om.output_fcs.41.weight",
        ] {
            let grad = vars[name].grad();
            assert!(grad.defined(), "no gradient for {name}");
            let norm = f64::try_from(grad.norm()).unwrap();
            assert!(norm.is_finite() && norm > 0.0, "{name}: grad norm {norm}");
        }
        // The channel gate's first layer feeds a ReLU of C/16 = 4 units: in one branch all
        // four can be shut for both images (CI saw it once, since tests in parallel share
        // the global RNG and so the init), but not in all eleven.
        let gate_norms: Vec<f64> = (0..11)
            .map(|n| {
                let grad = vars[&format!("fam.nets.{n}.channel_attention.mlp.1.weight")].grad();
                assert!(grad.defined(), "no gradient for channel attention {n}");
                f64::try_from(grad.norm()).unwrap()
            })
            .collect();
        assert!(
            gate_norms.iter().all(|n| n.is_finite()) && gate_norms.iter().any(|&n| n > 0.0),
            "channel attention gradient norms {gate_norms:?}"
        );
        // Batch norms counted the training batch.
        assert_eq!(
            i64::try_from(&vars["fam.nets.0.norm.num_batches_tracked"]).unwrap(),
            1
        );
        assert_eq!(
            i64::try_from(&vars["backbone.feature.3.num_batches_tracked"]).unwrap(),
            1
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = SwinFace::new(&vs.root(), &SwinFaceConfig::tiny_demo()).unwrap();
        let x = Tensor::zeros([1, 3, 96, 112], (Kind::Float, Device::Cpu));
        assert!(matches!(
            model.f_forward_t(&x, false),
            Err(ModelError::InputShape { .. })
        ));
        let x = Tensor::zeros([1, 3, 112, 112], (Kind::Uint8, Device::Cpu));
        assert!(matches!(
            model.check_input(&x),
            Err(ModelError::InputShape { .. })
        ));
    }

    #[test]
    fn double_precision_model_agrees_with_float() {
        tch::manual_seed(5);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = SwinFace::new(&vs.root(), &SwinFaceConfig::tiny_demo()).unwrap();
        crate::formula::fill_by_formula(&vs).unwrap();
        let x = crate::formula::formula_input(2);
        let single = tch::no_grad(|| model.forward_t(&x, false));
        vs.double();
        let double = tch::no_grad(|| model.forward_t(&x.to_kind(Kind::Double), false));
        assert_eq!(double.embedding.kind(), Kind::Double);
        for (a, b) in single.heads.iter().zip(&double.heads) {
            let diff = f64::try_from((a.to_kind(Kind::Double) - b).abs().max()).unwrap();
            assert!(diff < 1e-4, "float vs double max abs diff {diff}");
        }
    }
}
