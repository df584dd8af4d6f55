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
            ExitCode::from(exit_code(&err) as u8)
        }
    }
}

fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<textzoo::Error>())
        .map_or(1, textzoo::Error::exit_code)
}

fn run(args: args::Args) -> anyhow::Result<()> {
    match args.command {
        Some(args::Command::CombineCorpus(c)) => return combine_corpus(c),
        Some(args::Command::ModelToC(m)) => return model_to_c(m),
        Some(args::Command::ModelCard(m)) => return model_card(m),
        Some(args::Command::MigrateConfig(m)) => return migrate_config(m),
        Some(args::Command::SweepJob(j)) => return sweep_job(j),
        Some(args::Command::SweepStatus(d)) => {
            print!("{}", textzoo::sweep::status_text(&d.dir)?);
            return Ok(());
        }
        Some(args::Command::SweepReport(d)) => {
            textzoo::sweep::rebuild_report(&d.dir)?;
            return Ok(());
        }
        Some(args::Command::Export(e)) => return export(e),
        Some(args::Command::Check(c)) => return check(c),
        None => {}
    }
    let source = ConfigSource {
        config_path: args.config_path,
        config_name: args.config_name,
        overrides: args.overrides,
    };
    if args.multirun {
        return multirun(&source);
    }
    if args.cfg {
        let resolved = config::load(&source, chrono::Local::now()).map_err(textzoo::Error::from)?;
        print!("{}", to_yaml(&resolved.config)?);
        return Ok(());
    }
    let (dir, result) = run_once(&source, None);
    if let Some(dir) = dir {
        println!("run directory: {}", dir.display());
    }
    result
}

/// One run: resolve, preflight, run directory, pipeline. Returns the run directory once it
/// exists, and the outcome. `threads` applies when the configuration leaves
/// `general.num_threads` at 0 (a sweep's share of the cores).
fn run_once(
    source: &ConfigSource,
    threads: Option<usize>,
) -> (Option<std::path::PathBuf>, anyhow::Result<()>) {
    let prepared = (|| -> anyhow::Result<_> {
        let now = chrono::Local::now();
        let resolved = config::load(source, now).map_err(textzoo::Error::from)?;
        config::check_paths(&resolved.config).map_err(textzoo::Error::from)?;
        let wanted = match (resolved.config.general.num_threads, threads) {
            (0, Some(n)) => n,
            (n, _) => n,
        };
        let threads = textzoo::pipeline::threads::configure(wanted);
        textzoo::interrupt::install();
        let preflight = logging::console_only(|| Preflight::check(&resolved.config))?;
        let dir = create_run_dir(&resolved.config.hydra.run.dir)?;
        Ok((resolved, preflight, threads, dir))
    })();
    let (resolved, preflight, threads, dir) = match prepared {
        Ok(p) => p,
        Err(err) => return (None, Err(err)),
    };
    let result = execute(&resolved, &dir, preflight, threads);
    if let Err(err) = &result {
        tracing::error!("{err:#}");
    }
    (Some(dir), result)
}

/// `--multirun`: the sweep plans, launches and reports; its jobs are `sweep-job` runs.
fn multirun(source: &ConfigSource) -> anyhow::Result<()> {
    let binary = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("finding the textzoo binary the sweep's jobs run")?;
    textzoo::interrupt::install();
    match textzoo::sweep::multirun(source, chrono::Local::now(), binary)? {
        textzoo::sweep::Outcome::Done { dir, failed, total } => {
            println!("sweep directory: {}", dir.display());
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {total} jobs did not finish (see sweep.html and .sweep/logs/ in {}); rerun the same command to retry them",
                    dir.display()
                );
            }
            Ok(())
        }
        textzoo::sweep::Outcome::Interrupted { dir } => {
            println!("sweep directory: {}", dir.display());
            Err(textzoo::Error::Interrupted.into())
        }
        textzoo::sweep::Outcome::Submitted { dir, job_id } => {
            println!("Slurm job {job_id}; sweep directory: {}", dir.display());
            Ok(())
        }
    }
}

/// `sweep-job DIR NUM`: job NUM of the sweep in DIR, as an ordinary run, with its status file
/// written before and after.
fn sweep_job(args: args::SweepJobArgs) -> anyhow::Result<()> {
    use textzoo::sweep::{JobStatus, Manifest};
    let manifest = Manifest::load(&args.dir)?;
    let job = manifest.job(args.num)?;
    let started = JobStatus::started(job);
    started.save(&manifest.dir)?;
    let threads = args.threads.or_else(|| {
        std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    let (dir, result) = run_once(&manifest.source_for(job), threads);
    let (code, error) = match &result {
        Ok(()) => (0, None),
        Err(err) => (exit_code(err), Some(format!("{err:#}"))),
    };
    started
        .ended(dir.clone(), code, error)
        .save(&manifest.dir)?;
    if let Some(dir) = dir {
        println!("run directory: {}", dir.display());
    }
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
