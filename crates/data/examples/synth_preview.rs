//! Draws an 8x8 grid of generated faces into a PNG and prints their labels, to look at the
//! generator's output:
//! `cargo run -p swinface-data --example synth_preview -- OUT.png [SEED] [MODE]`, MODE one of `mixed` (default), `expr` (one row per expression), `age` (ages across a row),
//! `ident` (one identity per row, eight photos).

use swinface_data::attributes::SWINFACE_ATTRIBUTES;
use swinface_data::synth::{attr, person, photo, population, render, AgeRange, ImagePolicy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/tmp/synth_grid.png".into());
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mode = args.get(3).cloned().unwrap_or_else(|| "mixed".into());
    let n = 8u32;
    let mut grid = image::RgbImage::new(112 * n, 112 * n);
    for row in 0..n {
        for col in 0..n {
            let k = (row * n + col) as u64;
            let ages = AgeRange::default();
            let spec = match mode.as_str() {
                "expr" => {
                    let who = person(seed, population::PREVIEW, k, ages);
                    let mut policy = ImagePolicy::expressions();
                    policy.expression_weights = [0.0; 7];
                    policy.expression_weights[(row as usize) % 7] = 1.0;
                    photo(seed, population::PREVIEW, k, 0, &who, None, &policy)
                }
                "age" => {
                    let who = person(seed, population::PREVIEW, row as u64, ages);
                    let age = 2.0 + col as f32 * 11.0;
                    photo(
                        seed,
                        population::PREVIEW,
                        row as u64,
                        col as u64,
                        &who,
                        Some(age),
                        &ImagePolicy::portraits(),
                    )
                }
                "ident" => {
                    let who = person(seed, population::PREVIEW, row as u64, ages);
                    photo(
                        seed,
                        population::PREVIEW,
                        row as u64,
                        col as u64,
                        &who,
                        None,
                        &ImagePolicy::portraits(),
                    )
                }
                _ => {
                    let who = person(seed, population::PREVIEW, k, ages);
                    photo(
                        seed,
                        population::PREVIEW,
                        k,
                        0,
                        &who,
                        None,
                        &ImagePolicy::celebrities(),
                    )
                }
            };
            let img = render(&spec);
            image::imageops::replace(&mut grid, &img, (col * 112) as i64, (row * 112) as i64);
            let l = &spec.labels;
            let on: Vec<&str> = (0..40)
                .filter(|&a| a != attr::MALE && l.attributes[a])
                .map(|a| SWINFACE_ATTRIBUTES[a])
                .collect();
            println!(
                "r{row}c{col} id{} age {:.0} {} {:?}: {}",
                l.identity,
                l.age,
                if l.male { "M" } else { "F" },
                l.expression,
                on.join(", ")
            );
        }
    }
    grid.save(&out).expect("write the grid");
}
