//! The `textzoo` binary: parse arguments, resolve the configuration, create the run directory,
//! run the operation mode, map errors to exit codes (0 ok, 2 invalid configuration or input,
//! 1 failure while working).

mod args;
mod logging;

use anyhow::Context;
use clap::Parser;
use std::path::Path;
use std::process::ExitCode;
use textzoo::config::{self, ConfigSource};
use textzoo::pipeline::{create_run_dir, Pipeline, Preflight};
use textzoo::util::write_atomic;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = err
                .chain()
                .find_map(|e| e.downcast_ref::<textzoo::Error>())
                .map_or(1, textzoo::Error::exit_code);
            ExitCode::from(code as u8)
        }
    }
}

fn run(args: args::Args) -> anyhow::Result<()> {
    match args.command {
        Some(args::Command::CombineCorpus(c)) => return combine_corpus(c),
        Some(args::Command::ModelToC(m)) => return model_to_c(m),
        Some(args::Command::Export(e)) => return export(e),
        Some(args::Command::Check(c)) => return check(c),
        None => {}
    }
    let source = ConfigSource {
        config_path: args.config_path,
        config_name: args.config_name,
        overrides: args.overrides,
    };
    let now = chrono::Local::now();
    let resolved = config::load(&source, now).map_err(textzoo::Error::from)?;
    if args.cfg {
        print!("{}", to_yaml(&resolved.config)?);
        return Ok(());
    }
    config::check_paths(&resolved.config).map_err(textzoo::Error::from)?;
    let threads = textzoo::pipeline::threads::configure(resolved.config.general.num_threads);
    textzoo::interrupt::install();
    let preflight = logging::console_only(|| Preflight::check(&resolved.config))?;
    let dir = create_run_dir(&resolved.config.hydra.run.dir)?;
    let result = execute(&resolved, &dir, preflight, threads);
    if let Err(err) = &result {
        tracing::error!("{err:#}");
    }
    println!("run directory: {}", dir.display());
    result
}

fn execute(
    resolved: &config::Resolved,
    dir: &Path,
    preflight: Preflight,
    threads: usize,
) -> anyhow::Result<()> {
    let hydra = dir.join(".hydra");
    write_atomic(
        &hydra.join("config.yaml"),
        to_yaml(&resolved.config)?.as_bytes(),
    )?;
    write_atomic(
        &hydra.join("overrides.yaml"),
        to_yaml(&resolved.overrides)?.as_bytes(),
    )?;
    logging::init(&dir.join("textzoo.log")).context("setting up the run log")?;
    let origin = resolved
        .file
        .as_ref()
        .map_or("built-in defaults".to_string(), |p| p.display().to_string());
    tracing::info!(
        "textzoo {} — configuration from {origin}, run directory {}, {threads} threads",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    let mut pipeline = Pipeline::new(resolved.config.clone(), dir.to_path_buf(), preflight);
    pipeline.execute()?;
    Ok(())
}

fn to_yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let mut text = serde_saphyr::to_string(value).context("serializing the configuration")?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn model_to_c(args: args::ModelToCArgs) -> anyhow::Result<()> {
    let int8 = match logging::console_only(|| textzoo::artifact::ModelFile::open(&args.model))? {
        textzoo::artifact::ModelFile::Int8(int8) => int8,
        textzoo::artifact::ModelFile::Float(_) => {
            return Err(textzoo::Error::input(
                &args.model,
                "is a float model; model-to-c needs an int8 model (quantize it first: textzoo operation_mode=quantization general.model_path=...)",
            )
            .into())
        }
    };
    let files = textzoo::deployment::export_sources(&int8, &args.output)?;
    for name in &files {
        println!("{}", args.output.join(name).display());
    }
    println!(
        "wrote {} C files for {} to {} (build them with -std=c99 -ffp-contract=off; see src/textzoo_rt.h for the API)",
        files.len(),
        args.model.display(),
        args.output.display()
    );
    Ok(())
}

fn export(args: args::ExportArgs) -> anyhow::Result<()> {
    use textzoo::artifact::ModelFile;
    use textzoo::config::ExportFormat;
    let formats: Vec<ExportFormat> = args
        .format
        .iter()
        .map(|f| match f {
            args::FormatArg::Onnx => ExportFormat::Onnx,
            args::FormatArg::Tflite => ExportFormat::Tflite,
        })
        .collect();
    let model = logging::console_only(|| ModelFile::open(&args.model))?;
    let (float, int8) = match &model {
        ModelFile::Float(f) => (Some(f), None),
        ModelFile::Int8(q) => (None, Some(q)),
    };
    let input = textzoo::export::ExportInput {
        float,
        int8,
        formats: &formats,
        include_embedding: args.include_embedding,
        dir: args.output.clone(),
    };
    textzoo::export::check(&input)?;
    let report = logging::console_only(|| textzoo::export::export(&input))?;
    println!("{}", report.render());
    Ok(())
}

fn check(args: args::CheckArgs) -> anyhow::Result<()> {
    let report = textzoo::export::check::check_file(&args.file, args.board.as_deref())?;
    println!("{}", report.render());
    if report.ok() {
        println!("{}", report.verdict());
        Ok(())
    } else {
        // Exit code 1, the verdict as the last line.
        Err(anyhow::anyhow!("{}", report.verdict()))
    }
}

fn combine_corpus(args: args::CombineArgs) -> anyhow::Result<()> {
    use textzoo::data::combine::{combine, Normalize, UnicodeForm};
    let normalize = Normalize {
        unicode: args.normalize.map(|n| match n {
            args::UnicodeArg::Nfc => UnicodeForm::Nfc,
            args::UnicodeArg::Nfkc => UnicodeForm::Nfkc,
        }),
        lowercase: args.lowercase,
        collapse_blank_lines: args.collapse_blank_lines,
    };
    let report = combine(&args.inputs, &args.output, &normalize)?;
    for (file, bytes) in &report.files {
        println!("{:>12} bytes  {}", bytes, file.display());
    }
    println!(
        "combined {} files into {} ({} bytes)",
        report.files.len(),
        args.output.display(),
        report.output_bytes
    );
    Ok(())
}
