//! A small TensorBoard event-file writer: scalars and PNG images.
//!
//! tensorboard-rs has had no release since 2022 and lacks parts we need, so the few
//! protobuf messages TensorBoard reads are declared here with prost's derive and framed as
//! TFRecords (length, masked CRC32C of the length, payload, masked CRC32C of the payload).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

/// `tensorflow.Event` (only the fields we write).
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    image: Option<SummaryImage>,
}

/// `tensorflow.Summary.Image`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryImage {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

/// Appends events to `events.out.tfevents.<time>.<host>` in a log directory.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates a new event file in `dir` (created if missing).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let host = host.trim();
        let name = format!(
            "events.out.tfevents.{}.{}.{}",
            now.as_secs(),
            if host.is_empty() { "localhost" } else { host },
            std::process::id()
        );
        let path = dir.join(name);
        let mut writer = EventWriter {
            out: BufWriter::new(File::create(&path)?),
            path,
        };
        writer.write_event(&Event {
            wall_time: now.as_secs_f64(),
            step: 0,
            file_version: Some("brain.Event:2".to_string()),
            summary: None,
        })?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> std::io::Result<()> {
        self.write_summary(
            step,
            SummaryValue {
                tag: tag.to_string(),
                simple_value: Some(value as f32),
                image: None,
            },
        )
    }

    /// `png`: an encoded PNG image of `width` x `height` with `channels` (3 = RGB, 4 = RGBA).
    pub fn add_png(
        &mut self,
        tag: &str,
        png: Vec<u8>,
        width: u32,
        height: u32,
        channels: u8,
        step: i64,
    ) -> std::io::Result<()> {
        self.write_summary(
            step,
            SummaryValue {
                tag: tag.to_string(),
                simple_value: None,
                image: Some(SummaryImage {
                    height: height as i32,
                    width: width as i32,
                    colorspace: i32::from(channels),
                    encoded_image_string: png,
                }),
            },
        )
    }

    /// Pushes buffered events to the file so that a running TensorBoard sees them.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn write_summary(&mut self, step: i64, value: SummaryValue) -> std::io::Result<()> {
        let wall_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.write_event(&Event {
            wall_time,
            step,
            file_version: None,
            summary: Some(Summary { value: vec![value] }),
        })
    }

    fn write_event(&mut self, event: &Event) -> std::io::Result<()> {
        let payload = event.encode_to_vec();
        let len = (payload.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc(&len).to_le_bytes())?;
        self.out.write_all(&payload)?;
        self.out.write_all(&masked_crc(&payload).to_le_bytes())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// TFRecord's CRC: CRC32C rotated and offset so that CRCs of CRCs stay well distributed.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_of_known_input() {
        // CRC32C("123456789") = 0xE3069283 (the standard check value); masking per TFRecord.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    /// TensorBoard's own reader (the `tensorboard` Python package) must read our files.
    #[test]
    fn tensorboard_reads_scalars_and_images() {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
        let dir = tempfile::tempdir().unwrap();
        let png = {
            let img =
                image::RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8 * 60, y as u8 * 80, 7]));
            let mut bytes = Vec::new();
            img.write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
            bytes
        };
        {
            let mut w = EventWriter::create(dir.path()).unwrap();
            for step in 0..5 {
                w.add_scalar("loss/total", 2.0 - 0.25 * step as f64, step)
                    .unwrap();
            }
            w.add_scalar("lr/backbone", 5e-5, 3).unwrap();
            w.add_png("eval/confusion", png, 4, 3, 3, 4).unwrap();
        }
        let script = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    print(tag, " ".join(f"{e.step}:{e.value:.6g}" for e in acc.Scalars(tag)))
for tag in acc.Tags()["images"]:
    im = acc.Images(tag)[0]
    print(tag, im.step, im.width, im.height, len(im.encoded_image_string))
"#;
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "loss/total 0:2 1:1.75 2:1.5 3:1.25 4:1");
        assert_eq!(lines[1], "lr/backbone 3:5e-05");
        assert!(lines[2].starts_with("eval/confusion 4 4 3 "), "{text}");
    }
}
