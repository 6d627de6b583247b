//! Throwaway: attribute positive rates under the CelebA policy (labels only).
use swinface_data::attributes::SWINFACE_ATTRIBUTES;
use swinface_data::synth::{person, photo, population, AgeRange, ImagePolicy};
fn main() {
    let n = 20000u64;
    let mut pos = [0usize; 40];
    let ages = AgeRange {
        min: 12.0,
        max: 75.0,
    };
    for k in 0..n {
        let who = person(1, population::CELEBA, k, ages);
        let age = who.base_age.round().max(1.0);
        let s = photo(
            1,
            population::CELEBA,
            k,
            0,
            &who,
            Some(age),
            &ImagePolicy::celebrities(),
        );
        for a in 0..40 {
            pos[a] += s.labels.attributes[a] as usize;
        }
    }
    let mut maj = 0.0;
    for a in 0..40 {
        let r = pos[a] as f64 / n as f64;
        maj += r.max(1.0 - r) / 40.0;
        print!("{}={:.2}  ", SWINFACE_ATTRIBUTES[a], r);
    }
    println!("\nmean majority accuracy {maj:.3}");
}
