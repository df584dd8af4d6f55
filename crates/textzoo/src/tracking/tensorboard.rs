//! TensorBoard event files, written directly: the Rust writer crates are unmaintained, and the
//! format is small. An event file is a sequence of TFRecords
//!
//! ```text
//! u64 length (little endian) | u32 masked CRC32C of those 8 bytes | data | u32 masked CRC32C of data
//! ```
//!
//! whose data are `tensorflow.Event` protobuf messages: first one with
//! `file_version = "brain.Event:2"`, then one per step with a `Summary` of `simple_value`s.
//! Only the fields TensorBoard reads for scalars are declared here, with their proto tags.

use super::record::Record;
use crate::error::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `tensorflow.Event` (tensorflow/core/util/event.proto), scalar subset.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// Member of the `what` oneof; `optional` gives the same wire format and presence.
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary` (tensorflow/core/framework/summary.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`, scalar subset.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Member of the `value` oneof; `optional` so that a 0.0 is still written (a proto3 plain
    /// field would drop it, and TensorBoard would then not see a scalar at all).
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
}

const MASK_DELTA: u32 = 0xa282_ead8;

/// TFRecord's CRC: CRC32C rotated right by 15 bits plus a constant, so that a CRC of data
/// that itself contains CRCs stays well distributed.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// One TFRecord: the framing around `data`.
pub fn tfrecord_frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// Writes `<run_dir>/logs/events.out.tfevents.<secs>.<host>.<pid>.textzoo` with every scalar of
/// `record`, one event per step, and returns its path.
pub fn write_events(run_dir: &Path, record: &Record) -> Result<PathBuf> {
    let mut by_step: BTreeMap<u64, (i64, Vec<SummaryValue>)> = BTreeMap::new();
    for s in record.all_scalars() {
        let entry = by_step.entry(s.step).or_insert((s.wall_ms, Vec::new()));
        entry.0 = entry.0.max(s.wall_ms);
        entry.1.push(SummaryValue {
            tag: s.key.clone(),
            simple_value: Some(s.value as f32),
        });
    }
    let mut bytes = tfrecord_frame(
        &Event {
            wall_time: record.start_ms as f64 / 1000.0,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        }
        .encode_to_vec(),
    );
    for (step, (wall_ms, values)) in by_step {
        let event = Event {
            wall_time: wall_ms as f64 / 1000.0,
            step: step as i64,
            file_version: None,
            summary: Some(Summary { value: values }),
        };
        bytes.extend(tfrecord_frame(&event.encode_to_vec()));
    }
    let host = hostname();
    let name = format!(
        "events.out.tfevents.{}.{host}.{}.textzoo",
        record.start_ms / 1000,
        std::process::id()
    );
    let path = run_dir.join("logs").join(name);
    crate::util::write_atomic(&path, &bytes)?;
    Ok(path)
}

fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .or_else(|_| std::env::var("HOSTNAME"))
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// Reads TFRecords back, checking both CRCs (used by tests; TensorBoard is the real reader).
pub fn read_records(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let bad = |what: &str| Error::Internal(format!("bad TFRecord: {what}"));
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(bad("truncated header"));
        }
        let (len_bytes, tail) = rest.split_at(8);
        let (crc_bytes, tail) = tail.split_at(4);
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if crc != masked_crc32c(len_bytes) {
            return Err(bad("length CRC"));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(len_bytes);
        let len = usize::try_from(u64::from_le_bytes(len8)).map_err(|_| bad("length"))?;
        if tail.len() < len + 4 {
            return Err(bad("truncated data"));
        }
        let (data, tail) = tail.split_at(len);
        let (crc_bytes, tail) = tail.split_at(4);
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if crc != masked_crc32c(data) {
            return Err(bad("data CRC"));
        }
        out.push(data.to_vec());
        rest = tail;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value_and_masking() {
        // The CRC-32C check value (RFC 3720 / iSCSI) of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // Values from TensorFlow's own `masked_crc32c` (tensorboard.compat.tensorflow_stub).
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc32c(&0u64.to_le_bytes()), 0x0798_0329);
    }

    #[test]
    fn first_record_is_the_file_version_event_tensorflow_writes() {
        let event = Event {
            wall_time: 1.5,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        };
        let data = event.encode_to_vec();
        // field 1 double 1.5, field 3 string "brain.Event:2" (step 0 is the proto3 default).
        let mut expected = vec![0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x1a, 13];
        expected.extend_from_slice(b"brain.Event:2");
        assert_eq!(data, expected);
        let framed = tfrecord_frame(&data);
        assert_eq!(&framed[..8], &(data.len() as u64).to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(framed[8..12].try_into().unwrap()),
            masked_crc32c(&framed[..8])
        );
        assert_eq!(&framed[12..12 + data.len()], &data[..]);
        assert_eq!(framed.len(), data.len() + 16);
        assert_eq!(read_records(&framed).unwrap(), vec![data]);
        let mut corrupt = framed.clone();
        corrupt[14] ^= 1;
        assert!(read_records(&corrupt).is_err());
    }

    #[test]
    fn zero_scalars_are_kept() {
        let v = SummaryValue {
            tag: "lr".into(),
            simple_value: Some(0.0),
        };
        // tag (field 1) then float field 2 = 0.0, present.
        assert_eq!(
            v.encode_to_vec(),
            vec![0x0a, 2, b'l', b'r', 0x15, 0, 0, 0, 0]
        );
        let back = SummaryValue::decode(&v.encode_to_vec()[..]).unwrap();
        assert_eq!(back.simple_value, Some(0.0));
    }
}
