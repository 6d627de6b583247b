//! What a generated face is labelled with: identity, age, gender, expression and the 40
//! attributes in SwinFace's head order ([`crate::attributes::SWINFACE_ATTRIBUTES`]).

/// Facial expressions in RAF-DB's class order (label `k` in `list_patition_label.txt` is
/// class `k - 1` here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expression {
    Surprise = 0,
    Fear = 1,
    Disgust = 2,
    Happiness = 3,
    Sadness = 4,
    Anger = 5,
    Neutral = 6,
}

impl Expression {
    pub const ALL: [Expression; 7] = [
        Expression::Surprise,
        Expression::Fear,
        Expression::Disgust,
        Expression::Happiness,
        Expression::Sadness,
        Expression::Anger,
        Expression::Neutral,
    ];

    /// 0-based class index (RAF-DB order).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(index: usize) -> Option<Expression> {
        Self::ALL.get(index).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Expression::Surprise => "Surprise",
            Expression::Fear => "Fear",
            Expression::Disgust => "Disgust",
            Expression::Happiness => "Happiness",
            Expression::Sadness => "Sadness",
            Expression::Anger => "Anger",
            Expression::Neutral => "Neutral",
        }
    }
}

/// Positions of the attributes in SwinFace order (checked against the names in a test).
pub mod attr {
    pub const ATTRACTIVE: usize = 0;
    pub const BLURRY: usize = 1;
    pub const CHUBBY: usize = 2;
    pub const HEAVY_MAKEUP: usize = 3;
    pub const MALE: usize = 4;
    pub const OVAL_FACE: usize = 5;
    pub const PALE_SKIN: usize = 6;
    pub const SMILING: usize = 7;
    pub const YOUNG: usize = 8;
    pub const BALD: usize = 9;
    pub const BANGS: usize = 10;
    pub const BLACK_HAIR: usize = 11;
    pub const BLOND_HAIR: usize = 12;
    pub const BROWN_HAIR: usize = 13;
    pub const GRAY_HAIR: usize = 14;
    pub const RECEDING_HAIRLINE: usize = 15;
    pub const STRAIGHT_HAIR: usize = 16;
    pub const WAVY_HAIR: usize = 17;
    pub const WEARING_HAT: usize = 18;
    pub const ARCHED_EYEBROWS: usize = 19;
    pub const BAGS_UNDER_EYES: usize = 20;
    pub const BUSHY_EYEBROWS: usize = 21;
    pub const EYEGLASSES: usize = 22;
    pub const NARROW_EYES: usize = 23;
    pub const BIG_NOSE: usize = 24;
    pub const POINTY_NOSE: usize = 25;
    pub const HIGH_CHEEKBONES: usize = 26;
    pub const ROSY_CHEEKS: usize = 27;
    pub const WEARING_EARRINGS: usize = 28;
    pub const SIDEBURNS: usize = 29;
    pub const FIVE_O_CLOCK_SHADOW: usize = 30;
    pub const BIG_LIPS: usize = 31;
    pub const MOUTH_SLIGHTLY_OPEN: usize = 32;
    pub const MUSTACHE: usize = 33;
    pub const WEARING_LIPSTICK: usize = 34;
    pub const NO_BEARD: usize = 35;
    pub const DOUBLE_CHIN: usize = 36;
    pub const GOATEE: usize = 37;
    pub const WEARING_NECKLACE: usize = 38;
    pub const WEARING_NECKTIE: usize = 39;
}

/// Number of attributes.
pub const ATTRIBUTE_COUNT: usize = 40;

/// Every label of one generated image.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceLabels {
    /// Which person (unique within one key space: recognition, verification, or a dataset).
    pub identity: u64,
    /// Age in years.
    pub age: f32,
    pub male: bool,
    pub expression: Expression,
    /// SwinFace order; `attributes[attr::MALE] == male`.
    pub attributes: [bool; ATTRIBUTE_COUNT],
}

impl FaceLabels {
    pub fn has(&self, attribute: usize) -> bool {
        self.attributes.get(attribute).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::attr::*;
    use crate::attributes::{swinface_index, SWINFACE_ATTRIBUTES};

    #[test]
    fn indices_match_the_swinface_names() {
        let named = [
            (ATTRACTIVE, "Attractive"),
            (BLURRY, "Blurry"),
            (CHUBBY, "Chubby"),
            (HEAVY_MAKEUP, "Heavy Makeup"),
            (MALE, "Gender"),
            (OVAL_FACE, "Oval Face"),
            (PALE_SKIN, "Pale Skin"),
            (SMILING, "Smiling"),
            (YOUNG, "Young"),
            (BALD, "Bald"),
            (BANGS, "Bangs"),
            (BLACK_HAIR, "Black Hair"),
            (BLOND_HAIR, "Blond Hair"),
            (BROWN_HAIR, "Brown Hair"),
            (GRAY_HAIR, "Gray Hair"),
            (RECEDING_HAIRLINE, "Receding Hairline"),
            (STRAIGHT_HAIR, "Straight Hair"),
            (WAVY_HAIR, "Wavy Hair"),
            (WEARING_HAT, "Wearing Hat"),
            (ARCHED_EYEBROWS, "Arched Eyebrows"),
            (BAGS_UNDER_EYES, "Bags Under Eyes"),
            (BUSHY_EYEBROWS, "Bushy Eyebrows"),
            (EYEGLASSES, "Eyeglasses"),
            (NARROW_EYES, "Narrow Eyes"),
            (BIG_NOSE, "Big Nose"),
            (POINTY_NOSE, "Pointy Nose"),
            (HIGH_CHEEKBONES, "High Cheekbones"),
            (ROSY_CHEEKS, "Rosy Cheeks"),
            (WEARING_EARRINGS, "Wearing Earrings"),
            (SIDEBURNS, "Sideburns"),
            (FIVE_O_CLOCK_SHADOW, "Five O'Clock Shadow"),
            (BIG_LIPS, "Big Lips"),
            (MOUTH_SLIGHTLY_OPEN, "Mouth Slightly Open"),
            (MUSTACHE, "Mustache"),
            (WEARING_LIPSTICK, "Wearing Lipstick"),
            (NO_BEARD, "No Beard"),
            (DOUBLE_CHIN, "Double Chin"),
            (GOATEE, "Goatee"),
            (WEARING_NECKLACE, "Wearing Necklace"),
            (WEARING_NECKTIE, "Wearing Necktie"),
        ];
        assert_eq!(named.len(), SWINFACE_ATTRIBUTES.len());
        for (index, name) in named {
            assert_eq!(swinface_index(name), Some(index), "{name}");
        }
    }
}
