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
        Some(args::Command::ModelCard(m)) => return model_card(m),
        Some(args::Command::MigrateConfig(m)) => return migrate_config(m),
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

fn model_card(args: args::ModelCardArgs) -> anyhow::Result<()> {
    let report = textzoo::pipeline::card::write_card(&textzoo::pipeline::card::CardInput {
        run_dir: &args.run_dir,
        out_dir: &args.output,
    })?;
    for file in report.files.iter().chain([&report.card]) {
        println!("{}", file.display());
    }
    println!(
        "model card for {} written to {}",
        report.name,
        report.card.display()
    );
    Ok(())
}

fn migrate_config(args: args::MigrateArgs) -> anyhow::Result<()> {
    if args.output.exists() && !args.force {
        return Err(textzoo::Error::input(
            &args.output,
            "already exists; choose another output file or pass --force to overwrite it",
        )
        .into());
    }
    let migration = textzoo::migrate::migrate_file(&args.input)?;
    let text = textzoo::migrate::render(&migration, &args.input)?;
    print!("{}", textzoo::migrate::report(&migration));
    write_atomic(&args.output, text.as_bytes())?;
    println!(
        "wrote {} ({} keys mapped, {} dropped); run it with: textzoo --config-path {} --config-name {}",
        args.output.display(),
        migration.mapped.len(),
        migration.dropped.len(),
        args.output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or(".".into(), |p| p.display().to_string()),
        args.output
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    );
    Ok(())
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
