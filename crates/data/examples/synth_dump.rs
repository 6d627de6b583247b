//! Throwaway: dumps N rendered faces as raw RGB bytes plus a label CSV (analysis in numpy).
use rayon::prelude::*;
use std::io::Write;
use swinface_data::synth::{person, photo, population, render, AgeRange, ImagePolicy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let policy = match args.get(2).map(String::as_str) {
        Some("expr") => ImagePolicy::expressions(),
        Some("celeb") => ImagePolicy::celebrities(),
        _ => ImagePolicy::portraits(),
    };
    let t = std::time::Instant::now();
    let per: u64 = std::env::var("PER_ID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let out: Vec<(Vec<u8>, String)> = (0..n)
        .into_par_iter()
        .map(|k| {
            let who = person(
                7,
                population::RECOGNITION,
                k / per,
                AgeRange {
                    min: 5.0,
                    max: 80.0,
                },
            );
            let spec = photo(
                7,
                population::RECOGNITION,
                k / per,
                k % per,
                &who,
                None,
                &policy,
            );
            let img = render(&spec);
            let l = &spec.labels;
            let attrs: Vec<String> = l
                .attributes
                .iter()
                .map(|&a| (a as u8).to_string())
                .collect();
            (
                img.into_raw(),
                format!(
                    "{},{},{},{}",
                    l.age,
                    l.male as u8,
                    l.expression.index(),
                    attrs.join(",")
                ),
            )
        })
        .collect();
    eprintln!("{} images in {:.2}s", n, t.elapsed().as_secs_f64());
    let mut f = std::fs::File::create("/tmp/synth_dump.bin").unwrap();
    let mut csv = String::new();
    for (img, line) in &out {
        f.write_all(img).unwrap();
        csv.push_str(line);
        csv.push('\n');
    }
    std::fs::write("/tmp/synth_dump.csv", csv).unwrap();
}
