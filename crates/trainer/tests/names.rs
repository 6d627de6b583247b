//! The data crate cannot depend on the model crate, so it keeps its own copy of the
//! attribute names; they must stay equal to the model's output names.

use swinface_data::attributes::SWINFACE_ATTRIBUTES;
use swinface_model::TASK_NAMES;

#[test]
fn data_attribute_names_equal_the_model_outputs() {
    let from_model: Vec<&str> = TASK_NAMES
        .iter()
        .copied()
        .filter(|name| !matches!(*name, "Age" | "Expression" | "Recognition"))
        .collect();
    assert_eq!(from_model, SWINFACE_ATTRIBUTES.to_vec());
}
