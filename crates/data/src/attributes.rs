//! The 40 facial attributes: SwinFace's task order (what the model's heads and the SwinFace
//! `label.txt` use) and CelebA's own alphabetical order (what `list_attr_celeba.txt` uses),
//! with the mapping between the two by name.

/// SwinFace's attribute tasks in head order: the official `ANALYSIS_TASKS` without `Age` and
/// `Expression` (and without `Recognition`), so `Gender` is the 5th (index 4).
pub const SWINFACE_ATTRIBUTES: [&str; 40] = [
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
];

/// CelebA's attribute columns in `list_attr_celeba.txt` (alphabetical; `Male` is the 21st).
pub const CELEBA_ATTRIBUTES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

/// SwinFace's name for a CelebA column name: `Male` is `Gender`, `5_o_Clock_Shadow` is
/// `Five O'Clock Shadow`, otherwise underscores become spaces. `None` for an unknown name.
pub fn swinface_name_of_celeba(celeba_name: &str) -> Option<&'static str> {
    let wanted = match celeba_name {
        "Male" => "Gender".to_owned(),
        "5_o_Clock_Shadow" => "Five O'Clock Shadow".to_owned(),
        other => other.replace('_', " "),
    };
    SWINFACE_ATTRIBUTES.iter().copied().find(|&n| n == wanted)
}

/// Position in [`SWINFACE_ATTRIBUTES`] of a SwinFace attribute name.
pub fn swinface_index(name: &str) -> Option<usize> {
    SWINFACE_ATTRIBUTES.iter().position(|&n| n == name)
}

/// For each CelebA column `c` (in [`CELEBA_ATTRIBUTES`] order), the SwinFace head index it
/// feeds: `swinface[CELEBA_TO_SWINFACE[c]] = celeba[c]`.
pub fn celeba_to_swinface() -> [usize; 40] {
    let mut map = [0usize; 40];
    for (c, name) in CELEBA_ATTRIBUTES.iter().enumerate() {
        // The two tables name the same 40 attributes (tested below), so every lookup succeeds.
        map[c] = swinface_name_of_celeba(name)
            .and_then(swinface_index)
            .unwrap_or(usize::MAX);
    }
    map
}

/// Reorders one row of CelebA-ordered values into SwinFace task order.
pub fn celeba_row_to_swinface<T: Copy + Default>(celeba: &[T; 40]) -> [T; 40] {
    let mut out = [T::default(); 40];
    for (c, &s) in celeba_to_swinface().iter().enumerate() {
        out[s] = celeba[c];
    }
    out
}

/// Reorders one row of SwinFace-ordered values into CelebA's column order.
pub fn swinface_row_to_celeba<T: Copy + Default>(swinface: &[T; 40]) -> [T; 40] {
    let mut out = [T::default(); 40];
    for (c, &s) in celeba_to_swinface().iter().enumerate() {
        out[c] = swinface[s];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gender_and_male_positions() {
        assert_eq!(SWINFACE_ATTRIBUTES[4], "Gender");
        assert_eq!(CELEBA_ATTRIBUTES[20], "Male");
        assert_eq!(celeba_to_swinface()[20], 4);
        assert_eq!(
            celeba_to_swinface()[0],
            swinface_index("Five O'Clock Shadow").unwrap()
        );
    }

    #[test]
    fn mapping_is_a_permutation() {
        let map = celeba_to_swinface();
        let mut seen = [false; 40];
        for &s in &map {
            assert!(s < 40, "a CelebA name has no SwinFace counterpart");
            assert!(!seen[s], "two CelebA names map to one head");
            seen[s] = true;
        }
        let mut sorted = CELEBA_ATTRIBUTES;
        sorted.sort_unstable();
        assert_eq!(
            sorted, CELEBA_ATTRIBUTES,
            "CelebA's columns are alphabetical"
        );
    }

    #[test]
    fn reorder_round_trip() {
        let row: [u8; 40] = std::array::from_fn(|i| i as u8);
        let sw = celeba_row_to_swinface(&row);
        assert_eq!(sw[4], 20);
        assert_eq!(swinface_row_to_celeba(&sw), row);
    }
}
