//! Throwaway timing: writes a config's datasets with the release build.
use swinface_data::synth::{write_all, SynthConfig};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let config: SynthConfig = serde_yaml::from_str(&text).unwrap();
    let t = std::time::Instant::now();
    let m = write_all(std::path::Path::new(&args[2]), &config).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} images in {:.1}s = {:.0}/s",
        m.counts["total_images"],
        s,
        m.counts["total_images"] as f64 / s
    );
}
