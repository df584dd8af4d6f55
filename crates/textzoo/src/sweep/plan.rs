//! The job list of a sweep: the cartesian product of the override lists (Hydra's basic
//! sweeper, last override varying fastest) or a seeded random sample of it, each job's
//! configuration resolved and checked before anything runs, and where each job's run
//! directory goes.

use super::syntax::{self, SweepOverride};
use crate::config::{self, Config, ConfigError, ConfigSource, SweeperKind};
use crate::error::{Error, Result};
use chrono::{DateTime, Local};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use textzoo_rt::rng::Rng;

/// One job of the sweep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// `hydra.job.num`: the job's index in the sweep.
    pub num: usize,
    /// The overrides of this job alone, as a user could type them for a single run.
    pub overrides: Vec<String>,
    /// The swept keys and this job's value of each (for reports).
    pub swept: BTreeMap<String, String>,
    /// `hydra.sweep.dir`/`hydra.sweep.subdir`, absolute.
    pub run_dir: PathBuf,
}

/// A planned, fully validated sweep.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `hydra.sweep.dir`, absolute (Slurm tasks run elsewhere).
    pub dir: PathBuf,
    pub jobs: Vec<Job>,
    /// The swept keys, in command-line order.
    pub swept_keys: Vec<String>,
    /// The first job's configuration: the sweep's settings (`hydra.sweeper`,
    /// `hydra.launcher`, `mlflow`) are read from it.
    pub first: Config,
}

/// Expands and validates a sweep: every job's configuration is resolved (with one `now` for
/// all, so `${now:…}` names one sweep directory) and its files checked, so a bad value
/// anywhere is an error before any job starts.
pub fn plan(source: &ConfigSource, now: DateTime<Local>) -> Result<Plan> {
    let given: Vec<SweepOverride> = source
        .overrides
        .iter()
        .map(|raw| syntax::parse(raw))
        .collect::<std::result::Result<_, _>>()?;
    no_swept_hydra_keys(&given)?;
    // `hydra.sweeper.params` of the file come first; the command line replaces their keys.
    let probe = load_job(source, &combination(&given, 0), &label(&given, 0), 0, now)?;
    let mut parsed = Vec::new();
    for (key, value) in &probe.hydra.sweeper.params {
        if given.iter().any(|o| o.key == *key) {
            continue;
        }
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        parsed.push(syntax::parse(&format!("{key}={text}"))?);
    }
    let from_file = !parsed.is_empty();
    parsed.extend(given);
    no_swept_hydra_keys(&parsed)?;
    let mut swept_keys = Vec::new();
    for o in parsed.iter().filter(|o| o.swept) {
        if swept_keys.contains(&o.key) {
            return Err(ConfigError::Sweep {
                given: o.raw.clone(),
                message: format!("`{}` is swept twice; give its values in one list", o.key),
            }
            .into());
        }
        swept_keys.push(o.key.clone());
    }
    let first = if from_file {
        load_job(source, &combination(&parsed, 0), &label(&parsed, 0), 0, now)?
    } else {
        probe
    };
    let sizes: Vec<usize> = parsed.iter().map(|o| o.choices.len()).collect();
    let total = sizes
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .unwrap_or(usize::MAX);
    let sweeper = &first.hydra.sweeper;
    let indices: Vec<usize> = match sweeper.name {
        SweeperKind::Basic => {
            if total > sweeper.max_jobs {
                return Err(too_many(
                    total,
                    sweeper.max_jobs,
                    "the product of the lists",
                ));
            }
            (0..total).collect()
        }
        SweeperKind::Random => {
            let n = sweeper.n_trials.min(total);
            if n > sweeper.max_jobs {
                return Err(too_many(n, sweeper.max_jobs, "hydra.sweeper.n_trials"));
            }
            sample(total, n, sweeper.seed)
        }
    };
    let mut jobs = Vec::with_capacity(indices.len());
    let mut dirs = BTreeSet::new();
    let mut sweep_dir: Option<PathBuf> = None;
    for (num, &index) in indices.iter().enumerate() {
        let overrides = combination(&parsed, index);
        let config = if num == 0 && index == 0 {
            first.clone()
        } else {
            load_job(source, &overrides, &label(&parsed, index), num, now)?
        };
        let dir = absolute(&config.hydra.sweep.dir)?;
        match &sweep_dir {
            None => sweep_dir = Some(dir.clone()),
            Some(d) if *d != dir => {
                return Err(ConfigError::InJob {
                    job: num,
                    overrides: label(&parsed, index),
                    err: Box::new(ConfigError::Invalid {
                        key: "hydra.sweep.dir".into(),
                        message: format!(
                            "{} differs from job 0's {}; a sweep has one directory",
                            dir.display(),
                            d.display()
                        ),
                        suggestion: None,
                    }),
                }
                .into())
            }
            Some(_) => {}
        }
        let run_dir = dir.join(&config.hydra.sweep.subdir);
        if !dirs.insert(run_dir.clone()) {
            return Err(ConfigError::InJob {
                job: num,
                overrides: label(&parsed, index),
                err: Box::new(ConfigError::Invalid {
                    key: "hydra.sweep.subdir".into(),
                    message: format!(
                        "{} is another job's run directory too; use ${{hydra.job.num}} in it",
                        run_dir.display()
                    ),
                    suggestion: None,
                }),
            }
            .into());
        }
        let swept = parsed
            .iter()
            .zip(chosen(&sizes, index))
            .filter(|(o, _)| o.swept)
            .map(|(o, i)| (o.key.clone(), o.values[i].clone()))
            .collect();
        jobs.push(Job {
            num,
            overrides,
            swept,
            run_dir,
        });
    }
    let dir = sweep_dir.ok_or_else(|| Error::Internal("a sweep without jobs".into()))?;
    Ok(Plan {
        dir,
        jobs,
        swept_keys,
        first,
    })
}

/// `hydra.*` settings are the sweep's own and hold for every job.
fn no_swept_hydra_keys(parsed: &[SweepOverride]) -> Result<()> {
    if let Some(o) = parsed
        .iter()
        .find(|o| o.swept && o.key.starts_with("hydra."))
    {
        return Err(ConfigError::Sweep {
            given: o.raw.clone(),
            message: "hydra.* settings apply to the whole sweep and cannot be swept".into(),
        }
        .into());
    }
    Ok(())
}

fn too_many(jobs: usize, max: usize, what: &str) -> Error {
    ConfigError::OutOfRange {
        key: "hydra.sweeper.max_jobs".into(),
        value: max.to_string(),
        allowed: format!(
            "the sweep would run {} jobs ({what}); raise hydra.sweeper.max_jobs, shorten the \
             lists, or sample with hydra.sweeper.name=random hydra.sweeper.n_trials=N",
            if jobs == usize::MAX {
                "more than 2^64".to_string()
            } else {
                jobs.to_string()
            }
        ),
    }
    .into()
}

/// The value index of each override for combination `index` (mixed radix, the last override
/// varying fastest, as `itertools.product` in Hydra's basic sweeper).
fn chosen(sizes: &[usize], mut index: usize) -> Vec<usize> {
    let mut out = vec![0; sizes.len()];
    for (slot, &n) in out.iter_mut().zip(sizes).rev() {
        *slot = index % n;
        index /= n;
    }
    out
}

/// A job's swept values (`model.embed_dim=16 preprocessing.tokenizer=bpe`), for messages.
fn label(parsed: &[SweepOverride], index: usize) -> String {
    let sizes: Vec<usize> = parsed.iter().map(|o| o.choices.len()).collect();
    let swept: Vec<&str> = parsed
        .iter()
        .zip(chosen(&sizes, index))
        .filter(|(o, _)| o.swept)
        .map(|(o, i)| o.choices[i].as_str())
        .collect();
    if swept.is_empty() {
        "no swept values".into()
    } else {
        swept.join(" ")
    }
}

fn combination(parsed: &[SweepOverride], index: usize) -> Vec<String> {
    let sizes: Vec<usize> = parsed.iter().map(|o| o.choices.len()).collect();
    parsed
        .iter()
        .zip(chosen(&sizes, index))
        .map(|(o, i)| o.choices[i].clone())
        .collect()
}

/// `n` distinct combination indices out of `total`, drawn with the sweep's seed (the same
/// seed draws the same jobs), in ascending order.
fn sample(total: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut picked = BTreeSet::new();
    // Floyd's algorithm: n draws, no rejection loop, any total.
    for j in (total - n)..total {
        let t = draw_below(&mut rng, j + 1);
        if !picked.insert(t) {
            picked.insert(j);
        }
    }
    picked.into_iter().collect()
}

/// A uniform draw in `0..n` from two 32-bit outputs.
fn draw_below(rng: &mut Rng, n: usize) -> usize {
    let wide = (u64::from(rng.next_u32()) << 32) | u64::from(rng.next_u32());
    (wide % n as u64) as usize
}

/// Resolves and checks job `num`'s configuration (with `hydra.job.num` set, as the job will
/// see it).
fn load_job(
    source: &ConfigSource,
    overrides: &[String],
    label: &str,
    num: usize,
    now: DateTime<Local>,
) -> Result<Config> {
    let mut job_source = source.clone();
    job_source.overrides = overrides.to_vec();
    job_source.overrides.push(format!("hydra.job.num={num}"));
    let in_job = |err: ConfigError| -> Error {
        ConfigError::InJob {
            job: num,
            overrides: label.to_string(),
            err: Box::new(err),
        }
        .into()
    };
    let resolved = config::load(&job_source, now).map_err(in_job)?;
    config::check_paths(&resolved.config).map_err(in_job)?;
    Ok(resolved.config)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::io(format!("resolving hydra.sweep.dir {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(overrides: &[&str]) -> ConfigSource {
        ConfigSource {
            config_path: None,
            config_name: Some("none".into()),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn products_vary_the_last_override_fastest() {
        let sizes = [2, 3];
        let all: Vec<Vec<usize>> = (0..6).map(|i| chosen(&sizes, i)).collect();
        assert_eq!(
            all,
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]].map(|a| a.to_vec())
        );
    }

    #[test]
    fn random_samples_are_distinct_sorted_and_seeded() {
        let a = sample(100, 10, 7);
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&i| i < 100));
        assert_eq!(a, sample(100, 10, 7));
        assert_ne!(a, sample(100, 10, 8));
        assert_eq!(sample(5, 5, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn plans_the_product_with_one_directory_per_job() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("c.yaml");
        std::fs::write(&cfg, "dataset:\n  training_path: /dev/null\n").unwrap();
        let dir = tmp.path().join("sweep");
        let src = ConfigSource {
            config_path: Some(tmp.path().to_path_buf()),
            config_name: Some("c.yaml".into()),
            overrides: vec![
                "model.embed_dim=16,32".into(),
                "preprocessing.tokenizer=word,char".into(),
                "training.max_steps=3".into(),
                format!("hydra.sweep.dir={}", dir.display()),
            ],
        };
        let planned = plan(&src, Local::now()).unwrap();
        assert_eq!(planned.jobs.len(), 4);
        assert_eq!(planned.dir, dir);
        assert_eq!(
            planned.swept_keys,
            ["model.embed_dim", "preprocessing.tokenizer"]
        );
        assert_eq!(planned.jobs[1].run_dir, dir.join("1"));
        assert_eq!(
            planned.jobs[1].overrides[..3],
            [
                "model.embed_dim=16",
                "preprocessing.tokenizer=char",
                "training.max_steps=3"
            ]
        );
        assert_eq!(planned.jobs[2].swept["model.embed_dim"], "32");
    }

    #[test]
    fn a_bad_value_in_a_later_job_fails_the_plan_naming_the_job() {
        let err = plan(&source(&["model.embed_dim=16,-3"]), Local::now())
            .unwrap_err()
            .to_string();
        // The config file `none` is missing: the first job already fails, with its number.
        assert!(err.contains("sweep job 0"), "{err}");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("c.yaml"),
            "dataset:\n  training_path: /dev/null\n",
        )
        .unwrap();
        let src = ConfigSource {
            config_path: Some(tmp.path().to_path_buf()),
            config_name: Some("c.yaml".into()),
            overrides: vec!["model.num_layers=1,2,0".into()],
        };
        let err = plan(&src, Local::now()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sweep job 2") && text.contains("model.num_layers=0"),
            "{text}"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn sweep_settings_cannot_be_swept_and_the_cap_holds() {
        let err = plan(&source(&["hydra.launcher.n_jobs=1,2"]), Local::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be swept"), "{err}");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("c.yaml"),
            "dataset:\n  training_path: /dev/null\n",
        )
        .unwrap();
        let src = ConfigSource {
            config_path: Some(tmp.path().to_path_buf()),
            config_name: Some("c.yaml".into()),
            overrides: vec![
                "model.embed_dim=range(8,64,8)".into(),
                "general.global_seed=1,2,3".into(),
                "hydra.sweeper.max_jobs=20".into(),
            ],
        };
        let err = plan(&src, Local::now()).unwrap_err().to_string();
        assert!(err.contains("21 jobs"), "{err}");
        let mut random = src.clone();
        random.overrides.push("hydra.sweeper.name=random".into());
        random.overrides.push("hydra.sweeper.n_trials=5".into());
        let planned = plan(&random, Local::now()).unwrap();
        assert_eq!(planned.jobs.len(), 5);
        let again = plan(&random, Local::now()).unwrap();
        assert_eq!(
            planned
                .jobs
                .iter()
                .map(|j| &j.overrides)
                .collect::<Vec<_>>(),
            again.jobs.iter().map(|j| &j.overrides).collect::<Vec<_>>()
        );
    }

    #[test]
    fn sweeper_params_of_the_file_sweep_and_the_command_line_replaces_them() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("c.yaml"),
            "dataset:\n  training_path: /dev/null\nhydra:\n  sweeper:\n    params:\n      model.embed_dim: 16,32\n      preprocessing.tokenizer: word,char\n      model.num_layers: 1\n",
        )
        .unwrap();
        let mut src = ConfigSource {
            config_path: Some(tmp.path().to_path_buf()),
            config_name: Some("c.yaml".into()),
            overrides: vec![format!(
                "hydra.sweep.dir={}",
                tmp.path().join("s").display()
            )],
        };
        let planned = plan(&src, Local::now()).unwrap();
        assert_eq!(planned.jobs.len(), 4);
        assert_eq!(
            planned.swept_keys,
            ["model.embed_dim", "preprocessing.tokenizer"]
        );
        assert!(planned.jobs[3]
            .overrides
            .contains(&"model.num_layers=1".to_string()));
        src.overrides.push("preprocessing.tokenizer=bpe".into());
        let planned = plan(&src, Local::now()).unwrap();
        assert_eq!(planned.jobs.len(), 2);
        assert_eq!(planned.swept_keys, ["model.embed_dim"]);
    }
}
