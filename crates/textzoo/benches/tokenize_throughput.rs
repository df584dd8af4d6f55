//! Word-tokenizer encoding throughput on a ~100 MB corpus (issue: datasets and tokenizers).
//!
//! Builds the corpus by repeating the bundled books into a temporary file, trains the default
//! word tokenizer on tiny Shakespeare, then encodes the big file block by block with
//! `data::stream::encode_file` three times. Prints the median MB/s and the peak RSS (VmHWM),
//! with the corpus size for the "≤ 3× corpus" comparison.
//!
//! Run: `cargo bench -p textzoo --bench tokenize_throughput` (TEXTZOO_BENCH_MB=… to resize).

use std::io::Write;
use std::path::Path;
use std::time::Instant;
use textzoo::config::Preprocessing;
use textzoo::data::stream::encode_file;
use textzoo::data::TextTokenizer;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    let target_mb: usize = std::env::var("TEXTZOO_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let books: Vec<String> = [
        "tinyshakespeare.txt",
        "moby_dick.txt",
        "pride_and_prejudice.txt",
        "alice_in_wonderland.txt",
    ]
    .iter()
    .map(|b| std::fs::read_to_string(root.join(b)).expect("bundled corpus"))
    .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("corpus.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create corpus"));
        let mut written = 0;
        'fill: loop {
            for b in &books {
                f.write_all(b.as_bytes()).expect("write corpus");
                written += b.len();
                if written >= target_mb << 20 {
                    break 'fill;
                }
            }
        }
    }
    let size_mb = std::fs::metadata(&path).expect("corpus").len() as f64 / (1 << 20) as f64;
    let tokenizer =
        TextTokenizer::train(&Preprocessing::default(), &books[0]).expect("train tokenizer");
    drop(books);
    let rss_before = peak_rss_mb();
    let mut rates = Vec::new();
    let mut tokens = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let (ids, _) = encode_file(&tokenizer, &path).expect("encode");
        rates.push(size_mb / t.elapsed().as_secs_f64());
        tokens = ids.len();
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "corpus {size_mb:.1} MB, {tokens} tokens, word tokenizer ({} ids)",
        tokenizer.vocab_size()
    );
    println!(
        "encode throughput: median {:.1} MB/s over 3 runs (min {:.1}, max {:.1})",
        rates[1], rates[0], rates[2]
    );
    println!(
        "peak RSS {:.0} MB ({:.2}x the corpus; {:.0} MB before encoding)",
        peak_rss_mb(),
        peak_rss_mb() / size_mb,
        rss_before
    );
}
