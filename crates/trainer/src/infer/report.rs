//! Turning the 43 raw outputs of one image into readable predictions, and printing them.

use std::io::{self, Write};

use serde::ser::{Serialize, SerializeMap, Serializer};
use swinface_model::{EXPRESSION_LABELS, GENDER_LABELS, TASK_NAMES};

/// The outputs that are not yes/no attributes.
const AGE: &str = "Age";
const EXPRESSION: &str = "Expression";
const RECOGNITION: &str = "Recognition";
const GENDER: &str = "Gender";

/// A raw output whose width is not what its name implies.
#[derive(Debug, thiserror::Error)]
#[error("model output `{name}` has {actual} values, expected {expected}")]
pub struct OutputWidthError {
    pub name: &'static str,
    pub expected: usize,
    pub actual: usize,
}

/// Name -> value pairs that serialise as a JSON object in their given order.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Gender {
    pub label: &'static str,
    /// Probability of `label`.
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Expression {
    pub label: &'static str,
    pub probabilities: Ordered<f64>,
}

/// Everything printed for one image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub image: String,
    /// Years.
    pub age: f64,
    pub gender: Gender,
    pub expression: Expression,
    /// Probability of "yes" (softmax index 1) for the 40 two-class outputs, official order
    /// (Gender's is the probability of male).
    pub attributes: Ordered<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Ordered<Vec<f32>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

/// What to include besides the always-present predictions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    pub raw: bool,
    pub embedding: bool,
}

/// Builds the prediction of one image from its raw outputs (`outputs[i]` belongs to
/// `TASK_NAMES[i]`).
pub fn predict(
    image: String,
    outputs: &[&[f32]],
    extras: Extras,
) -> Result<Prediction, OutputWidthError> {
    let output = |name: &'static str, expected: Option<usize>| {
        let index = TASK_NAMES.iter().position(|n| *n == name);
        let values = index.and_then(|i| outputs.get(i)).copied().unwrap_or(&[]);
        match expected {
            Some(expected) if values.len() != expected => Err(OutputWidthError {
                name,
                expected,
                actual: values.len(),
            }),
            _ => Ok(values),
        }
    };

    let age = f64::from(output(AGE, Some(1))?[0]);

    let gender_p = softmax(output(GENDER, Some(GENDER_LABELS.len()))?);
    let gender_index = argmax(&gender_p);
    let gender = Gender {
        label: GENDER_LABELS[gender_index],
        probability: gender_p[gender_index],
    };

    let expression_p = softmax(output(EXPRESSION, Some(EXPRESSION_LABELS.len()))?);
    let expression = Expression {
        label: EXPRESSION_LABELS[argmax(&expression_p)],
        probabilities: Ordered(
            EXPRESSION_LABELS
                .iter()
                .copied()
                .zip(expression_p)
                .collect(),
        ),
    };

    let mut attributes = Vec::with_capacity(40);
    for name in attribute_names() {
        attributes.push((name, softmax(output(name, Some(2))?)[1]));
    }

    let raw = if extras.raw {
        let mut all = Vec::with_capacity(TASK_NAMES.len());
        for name in TASK_NAMES {
            all.push((name, output(name, None)?.to_vec()));
        }
        Some(Ordered(all))
    } else {
        None
    };
    let embedding = if extras.embedding {
        Some(l2_normalised(output(RECOGNITION, None)?))
    } else {
        None
    };

    Ok(Prediction {
        image,
        age,
        gender,
        expression,
        attributes: Ordered(attributes),
        raw,
        embedding,
    })
}

/// The 40 two-class outputs (every output but Age, Expression and Recognition), official order.
fn attribute_names() -> impl Iterator<Item = &'static str> {
    TASK_NAMES
        .into_iter()
        .filter(|n| ![AGE, EXPRESSION, RECOGNITION].contains(n))
}

/// Numerically stable softmax, in f64.
fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .map(|&v| f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

fn l2_normalised(values: &[f32]) -> Vec<f32> {
    let norm = values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    // Same guard as F.normalize (eps = 1e-12).
    let norm = norm.max(1e-12);
    values
        .iter()
        .map(|&v| (f64::from(v) / norm) as f32)
        .collect()
}

const NAME_WIDTH: usize = 22;
const VALUES_PER_LINE: usize = 8;

/// A readable block for one image.
pub fn write_table(out: &mut impl Write, p: &Prediction) -> io::Result<()> {
    writeln!(out, "{}", p.image)?;
    writeln!(out, "  {:<NAME_WIDTH$}{:.2}", "Age", p.age)?;
    writeln!(
        out,
        "  {:<NAME_WIDTH$}{} (p = {:.4})",
        "Gender", p.gender.label, p.gender.probability
    )?;
    let e = &p.expression;
    let e_p = e
        .probabilities
        .0
        .iter()
        .find(|(n, _)| *n == e.label)
        .map_or(f64::NAN, |(_, v)| *v);
    writeln!(
        out,
        "  {:<NAME_WIDTH$}{} (p = {e_p:.4})",
        "Expression", e.label
    )?;
    for (name, v) in &e.probabilities.0 {
        writeln!(out, "    {name:<w$}{v:.4}", w = NAME_WIDTH - 2)?;
    }
    writeln!(out, "  Attributes (probability of yes)")?;
    for (name, v) in &p.attributes.0 {
        writeln!(out, "    {name:<w$}{v:.4}", w = NAME_WIDTH - 2)?;
    }
    if let Some(embedding) = &p.embedding {
        writeln!(
            out,
            "  Embedding ({} values, L2-normalised)",
            embedding.len()
        )?;
        write_wrapped(out, "    ", embedding)?;
    }
    if let Some(raw) = &p.raw {
        writeln!(out, "  Raw outputs")?;
        for (name, values) in &raw.0 {
            if values.len() <= VALUES_PER_LINE {
                let text: Vec<String> = values.iter().map(|v| format!("{v:+.6}")).collect();
                writeln!(out, "    {name:<w$}{}", text.join(" "), w = NAME_WIDTH - 2)?;
            } else {
                writeln!(out, "    {name} ({} values)", values.len())?;
                write_wrapped(out, "      ", values)?;
            }
        }
    }
    writeln!(out)
}

fn write_wrapped(out: &mut impl Write, indent: &str, values: &[f32]) -> io::Result<()> {
    for chunk in values.chunks(VALUES_PER_LINE) {
        let text: Vec<String> = chunk.iter().map(|v| format!("{v:+.6}")).collect();
        writeln!(out, "{indent}{}", text.join(" "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs with known logits: Age 33.5, Gender [0, ln 3] (male 0.75), Expression one-hot
    /// on Happiness (logit ln 4 vs 0: p = 4 / 10), attribute k with logits [0, k / 10].
    fn outputs() -> Vec<Vec<f32>> {
        TASK_NAMES
            .iter()
            .enumerate()
            .map(|(k, name)| match *name {
                "Age" => vec![33.5],
                "Gender" => vec![0.0, 3f32.ln()],
                "Expression" => {
                    let mut v = vec![0.0; 7];
                    v[3] = 4f32.ln();
                    v
                }
                "Recognition" => vec![3.0, 4.0],
                _ => vec![0.0, k as f32 / 10.0],
            })
            .collect()
    }

    fn predict_all(extras: Extras) -> Prediction {
        let owned = outputs();
        let refs: Vec<&[f32]> = owned.iter().map(|v| v.as_slice()).collect();
        predict("x.png".into(), &refs, extras).unwrap()
    }

    #[test]
    fn decodes_heads_into_probabilities() {
        let p = predict_all(Extras::default());
        assert_eq!(p.age, 33.5);
        assert_eq!(p.gender.label, "male");
        assert!((p.gender.probability - 0.75).abs() < 1e-6);
        assert_eq!(p.expression.label, "Happiness");
        let probs = &p.expression.probabilities.0;
        assert_eq!(probs.len(), 7);
        assert!((probs[3].1 - 0.4).abs() < 1e-6 && (probs[0].1 - 0.1).abs() < 1e-6);
        assert_eq!(p.attributes.0.len(), 40);
        assert_eq!(p.attributes.0[0].0, "Attractive");
        assert_eq!(p.attributes.0[39].0, "Wearing Necktie");
        // Attractive is output 1: p(yes) = sigmoid(0.1).
        let expected = 1.0 / (1.0 + (-0.1f64).exp());
        assert!((p.attributes.0[0].1 - expected).abs() < 1e-6);
        let gender = p.attributes.0.iter().find(|(n, _)| *n == "Gender").unwrap();
        assert!((gender.1 - 0.75).abs() < 1e-6);
        assert!(p.raw.is_none() && p.embedding.is_none());
    }

    #[test]
    fn extras_and_json_shape() {
        let p = predict_all(Extras {
            raw: true,
            embedding: true,
        });
        assert_eq!(p.embedding.as_deref(), Some(&[0.6f32, 0.8][..]));
        let json = serde_json::to_value(&p).unwrap();
        let raw = json["raw"].as_object().unwrap();
        assert_eq!(raw.len(), 43);
        assert_eq!(raw["Age"], serde_json::json!([33.5]));
        // Keys keep the official order.
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.find("\"Attractive\"").unwrap() < text.find("\"Blurry\"").unwrap());
        assert!(text.find("\"Wearing Necktie\"").unwrap() < text.find("\"raw\"").unwrap());
        assert_eq!(json["gender"]["label"], "male");
        assert_eq!(
            json["expression"]["probabilities"]
                .as_object()
                .unwrap()
                .len(),
            7
        );

        let mut table = Vec::new();
        write_table(&mut table, &p).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("Gender                male (p = 0.7500)"),
            "{table}"
        );
        assert!(table.contains("Five O'Clock Shadow"));
    }

    #[test]
    fn wrong_widths_are_errors() {
        let mut owned = outputs();
        owned[5] = vec![1.0, 2.0, 3.0]; // Gender
        let refs: Vec<&[f32]> = owned.iter().map(|v| v.as_slice()).collect();
        let err = predict("x".into(), &refs, Extras::default()).unwrap_err();
        assert_eq!(err.name, "Gender");
        assert_eq!(err.actual, 3);
    }
}
