//! Config structs read the official names, reject unknown ones, and default to the official
//! values (configs/config_train.py).

use swinface_loss::{
    AmpConfig, AmpMode, LossWeights, LrName, OptimizerConfig, OptimizerName, PartialFcConfig,
    ScheduleConfig,
};
use tch::Device;

#[test]
fn official_names_parse() {
    let optimizer: OptimizerConfig = serde_json::from_str(
        r#"{"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}"#,
    )
    .unwrap();
    assert_eq!(optimizer.optimizer, OptimizerName::Sgd);
    assert_eq!(optimizer.lr, 0.1);
    assert_eq!(optimizer.backbone_lr_scale, 0.1);

    let pfc: PartialFcConfig = serde_json::from_str(
        r#"{"margin_list": [1.0, 0.5, 0.0], "sample_rate": 0.3, "interclass_filtering_threshold": 0,
            "embedding_size": 512, "num_classes": 85742}"#,
    )
    .unwrap();
    assert_eq!(pfc.margin_list, (1.0, 0.5, 0.0));

    let schedule: ScheduleConfig = serde_json::from_str(
        r#"{"scheduler": "linear", "warmup_step": 8000, "total_step": 80000, "warmup_lr": 5e-7, "min_lr": 5e-6}"#,
    )
    .unwrap();
    assert_eq!(schedule.lr_name, LrName::Linear);
    let schedule: ScheduleConfig = serde_json::from_str(r#"{"lr_name": "step"}"#).unwrap();
    assert_eq!(schedule.lr_name, LrName::Step);

    let amp: AmpConfig = serde_json::from_str(r#"{"fp16": true}"#).unwrap();
    assert_eq!(amp.mode(Device::Cuda(0)), AmpMode::Fp16);
    assert_eq!(amp.mode(Device::Cpu), AmpMode::Fp32);
    assert!(!amp.grad_scaler(Device::Cpu).unwrap().is_enabled());
    let amp: AmpConfig = serde_json::from_str(r#"{"amp_mode": "bf16"}"#).unwrap();
    assert_eq!(amp.mode(Device::Cuda(0)), AmpMode::Bf16);

    let weights: LossWeights = serde_json::from_str(r#"{"recognition_loss_weight": 1.0}"#).unwrap();
    assert_eq!(weights.analysis_loss_weights, vec![1.0; 42]);
}

#[test]
fn unknown_names_are_rejected() {
    assert!(serde_json::from_str::<OptimizerConfig>(r#"{"learning_rate": 0.1}"#).is_err());
    assert!(serde_json::from_str::<PartialFcConfig>(r#"{"margins": [1, 0, 0.4]}"#).is_err());
    assert!(serde_json::from_str::<ScheduleConfig>(r#"{"lr_name": "exponential"}"#).is_err());
}

#[test]
fn defaults_are_the_official_training_config() {
    let o = OptimizerConfig::default();
    assert_eq!(
        (o.optimizer, o.lr, o.weight_decay),
        (OptimizerName::Adamw, 5e-4, 0.05)
    );
    let s = ScheduleConfig::default();
    assert_eq!(
        (
            s.lr_name,
            s.warmup_step,
            s.total_step,
            s.warmup_lr,
            s.min_lr
        ),
        (LrName::Cosine, 8000, 80000, 5e-7, 5e-6)
    );
    let p = PartialFcConfig::default();
    assert_eq!(
        (
            p.margin_list,
            p.sample_rate,
            p.num_classes,
            p.embedding_size
        ),
        ((1.0, 0.0, 0.4), 0.3, 85742, 512)
    );
    assert!(AmpConfig::default().fp16);
}

#[test]
fn age_head_lr_scale_puts_the_age_head_in_a_group_of_its_own() {
    const AGE_HEAD: &str = "om.output_fcs.1.";
    let param = |name: &str| {
        (
            name.to_owned(),
            tch::Tensor::zeros([1], tch::kind::FLOAT_CPU),
        )
    };
    let backbone = || vec![param("backbone.patch_embed.proj.weight")];
    let heads = || {
        vec![
            param("fam.nets.0.norm.weight"),
            param("om.output_fcs.1.weight"),
            param("om.output_fcs.1.bias"),
            param("om.output_fcs.10.weight"),
            param("om.output_fcs.11.bias"),
        ]
    };
    let names = |g: &swinface_loss::optim::ParamGroup| -> Vec<String> {
        g.params.iter().map(|(n, _)| n.clone()).collect()
    };

    // Official (scale 1): two groups, the age head among the heads.
    let official = OptimizerConfig::default().official_groups(backbone(), heads(), AGE_HEAD);
    assert_eq!(official.len(), 2);
    assert_eq!(official[1].params.len(), 5);

    let config = OptimizerConfig {
        age_head_lr_scale: 8.0,
        ..OptimizerConfig::default()
    };
    let groups = config.official_groups(backbone(), heads(), AGE_HEAD);
    assert_eq!(groups.len(), 3);
    assert_eq!(
        (groups[1].name.as_str(), groups[1].lr_scale),
        ("heads", 1.0)
    );
    assert_eq!(
        names(&groups[1]),
        [
            "fam.nets.0.norm.weight",
            "om.output_fcs.10.weight",
            "om.output_fcs.11.bias"
        ]
    );
    assert_eq!(
        (groups[2].name.as_str(), groups[2].lr_scale),
        ("age_head", 8.0)
    );
    assert_eq!(
        names(&groups[2]),
        ["om.output_fcs.1.weight", "om.output_fcs.1.bias"]
    );
    assert_eq!(groups[2].weight_decay, config.weight_decay);

    // Exempting norms and biases splits each of the three.
    let exempt = OptimizerConfig {
        no_decay_for_norm_and_bias: true,
        ..config.clone()
    };
    assert_eq!(
        exempt.official_groups(backbone(), heads(), AGE_HEAD).len(),
        6
    );

    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let config = OptimizerConfig {
            age_head_lr_scale: bad,
            ..OptimizerConfig::default()
        };
        assert!(config.validate().is_err(), "age_head_lr_scale {bad}");
    }
}
