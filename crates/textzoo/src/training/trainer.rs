//! The training loop: batches → forward → cross-entropy → backward → clip → AdamW, with
//! periodic validation, early stopping, checkpoints and resume.

use super::schedule::{learning_rate, time_horizon};
use super::shards::{Shards, Step};
use super::state::{derive_seed, TrainState};
use crate::artifact::float::{self as file, CheckpointState, ModelMeta};
use crate::config::{Config, LrScheduleKind};
use crate::data::windows::{epoch_starts, window_count};
use crate::data::{Batch, Target};
use crate::error::{Error, Result};
use crate::evaluation::evaluate;
use crate::lm::LanguageModel;
use crate::models::FloatModel;
use crate::nn::optim::AdamW;
use crate::training::ema::Ema;
use crate::training::Teacher;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use textzoo_rt::Rng;

const PURPOSE_EPOCH: u64 = 1;
const PURPOSE_STEP: u64 = 2;
/// Steps timed before a time-limited run first estimates its schedule horizon (re-estimated at
/// every validation after that).
const HORIZON_PROBE_STEPS: u64 = 20;
/// Periodic checkpoints kept beside `last.safetensors`.
const KEEP_CHECKPOINTS: usize = 3;

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Epochs,
    MaxSteps,
    Time,
    EarlyStopping,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Epochs => "epochs",
            StopReason::MaxSteps => "max_steps",
            StopReason::Time => "max_minutes",
            StopReason::EarlyStopping => "early_stopping",
        }
    }
}

/// Where the trainer writes.
pub struct Paths {
    pub best: PathBuf,
    pub checkpoint: PathBuf,
    pub log_csv: PathBuf,
}

pub struct Trainer<'a> {
    pub cfg: &'a Config,
    pub model: Box<dyn FloatModel>,
    shards: Shards,
    pub optim: AdamW,
    pub state: TrainState,
    pub meta: ModelMeta,
    pub paths: Paths,
    best_params: Option<Vec<f32>>,
    /// The weights' moving average, when `training.ema_decay` is set.
    ema: Option<Ema>,
    /// `(step, train loss averaged since the last validation, validation loss, lr)`.
    pub history: Vec<(u64, f64, Option<f64>, f64)>,
    /// The distillation teacher (`training.distillation`), run forward on every batch.
    teacher: Option<Teacher>,
}

impl<'a> Trainer<'a> {
    pub fn new(
        cfg: &'a Config,
        model: Box<dyn FloatModel>,
        meta: ModelMeta,
        paths: Paths,
        resume: Option<CheckpointState>,
    ) -> Result<Self> {
        let t = &cfg.training;
        let mut optim = AdamW::new(
            model.num_params(),
            t.beta1 as f32,
            t.beta2 as f32,
            t.eps as f32,
            t.weight_decay as f32,
        );
        let (state, resumed_ema, best_params) = match resume {
            Some(c) => {
                let state: TrainState = serde_json::from_value(c.state).map_err(|e| {
                    Error::input(
                        &paths.checkpoint,
                        format!("checkpoint state is damaged: {e}"),
                    )
                })?;
                optim.restore(c.m, c.v, state.step)?;
                // Without stored best weights the best step is the checkpoint's own step, whose
                // validated weights are the moving average when there is one.
                let best = match (c.best, state.best_val_loss) {
                    (Some(best), _) => Some(best),
                    (None, Some(_)) if state.best_step == state.step => {
                        Some(c.ema.clone().unwrap_or_else(|| model.params().data.clone()))
                    }
                    (None, _) => None,
                };
                (state, c.ema, best)
            }
            None => (TrainState::new(0), None, None),
        };
        // A checkpoint written without an average (ema_decay set on resume) starts one at the
        // resumed weights.
        let ema = t.ema_decay.map(|decay| {
            let start = resumed_ema.unwrap_or_else(|| model.params().data.clone());
            Ema::new(decay as f32, start)
        });
        Ok(Self {
            cfg,
            ema,
            shards: Shards::new(model.as_ref()),
            model,
            optim,
            state,
            meta,
            paths,
            best_params,
            history: Vec::new(),
            teacher: None,
        })
    }

    /// Trains against `teacher` as well as the targets (see [`crate::nn::distillation`]).
    pub fn with_teacher(mut self, teacher: Option<Teacher>) -> Self {
        self.teacher = teacher;
        self
    }

    fn target(&self) -> Target {
        if self.model.config().predicts_every_position() {
            Target::EveryPosition
        } else {
            Target::NextToken
        }
    }

    fn epoch_order(&self, len: usize, epoch: u64) -> Vec<usize> {
        let mut rng = Rng::new(derive_seed(
            self.cfg.general.global_seed,
            PURPOSE_EPOCH,
            epoch,
        ));
        epoch_starts(len, self.model.config().seq_len, self.target(), &mut rng)
    }

    /// Trains until a limit is reached; `Err(Interrupted)` after writing a checkpoint on Ctrl-C.
    pub fn train(&mut self, train: &[u32], val: &[u32]) -> Result<StopReason> {
        let t = &self.cfg.training;
        let step_limit = self.step_limit(train.len());
        if self.state.horizon == 0 {
            self.state.horizon = step_limit.unwrap_or(0);
        }
        let deadline = t.max_minutes.map(|m| Duration::from_secs_f64(m * 60.0));
        let clock = Clock {
            started: Instant::now(),
            already: self.state.seconds,
            first_step: self.state.step,
        };
        let mut log = self.open_log()?;
        let progress = progress_bar(self.state.horizon.max(self.state.step));
        progress.set_position(self.state.step);
        let mut order = self.epoch_order(train.len(), self.state.epoch);
        let mut batch = Batch::default();
        let mut last_eval = None;
        let reason = loop {
            if let Some(reason) = self.limit_reached(step_limit, deadline, &clock) {
                break reason;
            }
            if crate::interrupt::requested() {
                return self.interrupted(&clock, &progress, &mut log);
            }
            if !self.next_batch(train, &mut order, &mut batch) {
                break StopReason::Epochs;
            }
            let (loss, lr) = self.step(&mut batch, &mut log)?;
            let tokens_per_s = self.state.tokens_seen as f64 / clock.elapsed().max(1e-9);
            progress.set_position(self.state.step);
            progress.set_message(format!(
                "loss {loss:.3} | {tokens_per_s:.0} tok/s | lr {lr:.2e}"
            ));

            let evaluate_now = self.state.step.is_multiple_of(t.eval_interval);
            if evaluate_now {
                last_eval = Some(self.state.step);
                if self.validate(val, lr, &progress)? {
                    break StopReason::EarlyStopping;
                }
            }
            if let (None, Some(d)) = (step_limit, deadline) {
                self.update_horizon(d, &clock, evaluate_now, &progress);
            }
            if t.checkpoint_interval > 0 && self.state.step.is_multiple_of(t.checkpoint_interval) {
                self.state.seconds = clock.elapsed();
                self.periodic_checkpoint()?;
            }
        };
        self.end_run(val, last_eval, &clock, &progress, &mut log)?;
        Ok(reason)
    }

    /// Windows in one step: `training.batch_size`, or every window of the training split when
    /// the split holds fewer (one batch per epoch).
    pub fn effective_batch_size(&self, train_len: usize) -> usize {
        let windows = window_count(train_len, self.model.config().seq_len, self.target());
        self.cfg.training.batch_size.min(windows.max(1))
    }

    /// The last step of the run, from `training.epochs` and `training.max_steps` (none when
    /// only the time limit ends it).
    fn step_limit(&self, train_len: usize) -> Option<u64> {
        let t = &self.cfg.training;
        let seq = self.model.config().seq_len;
        let steps_per_epoch = window_count(train_len, seq, self.target())
            .div_ceil(t.batch_size)
            .max(1) as u64;
        match (t.epochs, t.max_steps) {
            (Some(e), Some(m)) => Some((e * steps_per_epoch).min(m)),
            (Some(e), None) => Some(e * steps_per_epoch),
            (None, m) => m,
        }
    }

    /// Why the run ends before the next step, if it does: the step limit or the time limit.
    fn limit_reached(
        &self,
        step_limit: Option<u64>,
        deadline: Option<Duration>,
        clock: &Clock,
    ) -> Option<StopReason> {
        let t = &self.cfg.training;
        if step_limit.is_some_and(|l| self.state.step >= l) {
            return Some(if t.max_steps.is_some_and(|m| m == self.state.step) {
                StopReason::MaxSteps
            } else {
                StopReason::Epochs
            });
        }
        if deadline.is_some_and(|d| clock.elapsed() >= d.as_secs_f64()) {
            return Some(StopReason::Time);
        }
        None
    }

    /// Ctrl-C: a checkpoint to resume from, then the interruption as the run's error.
    fn interrupted(
        &mut self,
        clock: &Clock,
        progress: &ProgressBar,
        log: &mut impl Write,
    ) -> Result<StopReason> {
        progress.abandon();
        self.state.seconds = clock.elapsed();
        self.checkpoint()?;
        log.flush().ok();
        tracing::warn!(
            "interrupted at step {}: checkpoint written to {}",
            self.state.step,
            self.paths.checkpoint.display()
        );
        Err(Error::Interrupted)
    }

    /// Fills `batch` with the next windows of the epoch order, starting a new epoch (and a new
    /// `order`) when the current one has no full batch left; false when `training.epochs` are
    /// done.
    fn next_batch(&mut self, train: &[u32], order: &mut Vec<usize>, batch: &mut Batch) -> bool {
        let (batch_size, seq) = (self.cfg.training.batch_size, self.model.config().seq_len);
        if self.state.position + batch_size > order.len() {
            self.state.epoch += 1;
            self.state.position = 0;
            if self
                .cfg
                .training
                .epochs
                .is_some_and(|e| self.state.epoch >= e)
            {
                return false;
            }
            *order = self.epoch_order(train.len(), self.state.epoch);
        }
        let end = (self.state.position + batch_size).min(order.len());
        batch.fill(train, &order[self.state.position..end], seq, self.target());
        self.state.position = end;
        true
    }

    /// One optimisation step on `batch`: loss and gradient, clipping and AdamW, the moving
    /// average, the counters and the `training_log.csv` row. Returns the loss and the learning
    /// rate used.
    fn step(&mut self, batch: &mut Batch, log: &mut impl Write) -> Result<(f32, f64)> {
        let t = &self.cfg.training;
        let mut rng = Rng::new(derive_seed(
            self.cfg.general.global_seed,
            PURPOSE_STEP,
            self.state.step,
        ));
        if self.target() == Target::NextToken {
            batch.pad_left_randomly(t.short_context_share as f32, &mut rng);
        }
        let seq = self.model.config().seq_len;
        // The teacher sees the batch exactly as the student does (padding included).
        let soft = (self.teacher.as_mut()).map(|t| t.soft(&batch.tokens, batch.batch, seq));
        // The model's gradient is zero here: the optimizer step below clears it (and the
        // replicas' are cleared as they are added in), saving a pass per step.
        let step = Step {
            tokens: &batch.tokens,
            targets: &batch.targets,
            batch: batch.batch,
            seq,
            soft,
        };
        let loss = self
            .shards
            .loss_and_grad(self.model.as_mut(), &step, &mut rng);
        let lr = self.learning_rate();
        let max_norm = if t.grad_clip > 0.0 {
            t.grad_clip as f32
        } else {
            f32::INFINITY
        };
        // Clipping, AdamW and clearing the gradient in two passes over memory; a non-finite
        // loss or norm leaves the weights untouched.
        let norm = if loss.is_finite() {
            self.optim
                .step(self.model.params_mut(), lr as f32, max_norm)
        } else {
            f32::NAN
        };
        if !loss.is_finite() || !norm.is_finite() {
            return Err(Error::Internal(format!(
                "training diverged at step {} (loss {loss}, gradient norm {norm}); lower training.learning_rate or raise training.grad_clip",
                self.state.step + 1
            )));
        }
        self.state.step += 1;
        if let Some(ema) = &mut self.ema {
            ema.update(&self.model.params().data, self.state.step);
        }
        self.state.tokens_seen += batch.targets.len() as u64;
        self.state.loss_since_eval += loss as f64;
        self.state.steps_since_eval += 1;
        writeln!(log, "{},{},{:e},{}", self.state.step, loss, lr, norm)
            .map_err(|e| Error::io("writing training_log.csv", e))?;
        Ok((loss, lr))
    }

    /// A time-limited run re-estimates how many steps fit (the schedule's horizon) after its
    /// first probe steps and at every validation.
    fn update_horizon(
        &mut self,
        deadline: Duration,
        clock: &Clock,
        evaluated: bool,
        progress: &ProgressBar,
    ) {
        let steps = self.state.step - clock.first_step;
        let probe = self.state.horizon == 0 && steps == HORIZON_PROBE_STEPS;
        if probe || evaluated {
            self.state.horizon = time_horizon(
                self.state.step,
                steps,
                clock.started.elapsed().as_secs_f64(),
                deadline.as_secs_f64() - clock.elapsed(),
            );
            progress.set_length(self.state.horizon);
        }
    }

    /// A last validation unless the last step had one, the log flushed and the final
    /// checkpoint.
    fn end_run(
        &mut self,
        val: &[u32],
        last_eval: Option<u64>,
        clock: &Clock,
        progress: &ProgressBar,
        log: &mut impl Write,
    ) -> Result<()> {
        if last_eval != Some(self.state.step) && self.state.step > 0 {
            let lr = self.learning_rate();
            self.validate(val, lr, progress)?;
        }
        progress.finish_and_clear();
        self.state.seconds = clock.elapsed();
        log.flush()
            .map_err(|e| Error::io("writing training_log.csv", e))?;
        self.checkpoint()
    }

    fn learning_rate(&self) -> f64 {
        let t = &self.cfg.training;
        learning_rate(
            t.learning_rate,
            &t.lr_schedule,
            self.state.step,
            self.state.horizon,
            self.state.plateau_scale,
        )
    }

    fn open_log(&self) -> Result<std::io::BufWriter<std::fs::File>> {
        let io = |e| Error::io(format!("opening {}", self.paths.log_csv.display()), e);
        let fresh = !self.paths.log_csv.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.paths.log_csv)
            .map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        if fresh {
            writeln!(w, "step,loss,lr,grad_norm").map_err(io)?;
        }
        Ok(w)
    }

    /// Validation loss, best-model tracking, early stopping and reduce-on-plateau, on the
    /// weights' moving average when there is one. Returns whether training should stop.
    fn validate(&mut self, val: &[u32], lr: f64, progress: &ProgressBar) -> Result<bool> {
        self.swap_ema();
        let stop = self.validate_weights(val, lr, progress);
        self.swap_ema();
        stop
    }

    /// Puts the moving average in the model's place, or back (no-op without one).
    fn swap_ema(&mut self) {
        if let Some(ema) = &mut self.ema {
            ema.swap(self.model.params_mut());
        }
    }

    fn validate_weights(&mut self, val: &[u32], lr: f64, progress: &ProgressBar) -> Result<bool> {
        let cfg = self.cfg;
        let t = &cfg.training;
        let train_loss = self.state.loss_since_eval / self.state.steps_since_eval.max(1) as f64;
        self.state.loss_since_eval = 0.0;
        self.state.steps_since_eval = 0;
        let metrics = evaluate(
            &mut self.model as &mut dyn LanguageModel,
            val,
            self.cfg.evaluation.batch_size,
            t.eval_windows,
        );
        let Some(m) = metrics else {
            self.history.push((self.state.step, train_loss, None, lr));
            return Ok(false);
        };
        self.history
            .push((self.state.step, train_loss, Some(m.loss), lr));
        let improved = self
            .state
            .best_val_loss
            .is_none_or(|best| m.loss < best - t.early_stopping.min_delta);
        progress.suspend(|| {
            tracing::info!(
                "step {}: train loss {train_loss:.4}, val loss {:.4} (perplexity {:.2}, top-1 {:.1}%){}",
                self.state.step,
                m.loss,
                m.perplexity,
                100.0 * m.accuracy,
                if improved { ", best so far" } else { "" }
            )
        });
        if improved {
            self.state.best_val_loss = Some(m.loss);
            self.state.best_step = self.state.step;
            self.state.evals_since_best = 0;
            self.state.plateau_evals = 0;
            self.best_params = Some(self.model.params().data.clone());
            self.save_model(&self.paths.best.clone())?;
            return Ok(false);
        }
        self.state.evals_since_best += 1;
        self.state.plateau_evals += 1;
        let s = &t.lr_schedule;
        if s.name == LrScheduleKind::ReduceOnPlateau && self.state.plateau_evals >= s.patience {
            self.state.plateau_scale *= s.factor;
            self.state.plateau_evals = 0;
            tracing::info!("validation loss plateaued: learning rate × {}", s.factor);
        }
        let es = &t.early_stopping;
        Ok(es.enabled && self.state.evals_since_best >= es.patience)
    }

    /// The weights training hands on: the best validated ones when `restore_best`, else the
    /// moving average when there is one, else the last.
    pub fn finish(&mut self) -> Result<()> {
        let best = match self.cfg.training.early_stopping.restore_best {
            true => self.best_params.take(),
            false => None,
        };
        if let Some(weights) = best.or_else(|| self.ema.take().map(|e| e.weights)) {
            self.model.params_mut().data = weights;
        }
        self.save_model(&self.paths.best.clone())
    }

    fn save_model(&self, path: &std::path::Path) -> Result<()> {
        file::save(path, self.model.as_ref(), &self.meta_with_summary(), None)
    }

    /// The model's metadata with a summary of this training run, as the saved file holds it.
    pub fn meta_with_summary(&self) -> ModelMeta {
        let mut meta = self.meta.clone();
        meta.training = serde_json::json!({
            "steps": self.state.step,
            "epochs_started": self.state.epoch + 1,
            "best_val_loss": self.state.best_val_loss,
            "best_step": self.state.best_step,
            "tokens_seen": self.state.tokens_seen,
            "seed": self.cfg.general.global_seed,
            "textzoo_version": env!("CARGO_PKG_VERSION"),
        });
        if let Some(t) = &self.teacher {
            meta.training["distillation"] = t.summary();
        }
        meta
    }

    /// `checkpoints/last.safetensors` and the same file as `step_NNNNNNNN.safetensors`
    /// (keeping the newest few of those), so that after a crash or `kill -9` the checkpoint to
    /// resume from is always `last.safetensors` and at most one interval is lost.
    fn periodic_checkpoint(&self) -> Result<()> {
        let dir = self
            .paths
            .checkpoint
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let path = dir.join(format!("step_{:08}.safetensors", self.state.step));
        // `last` first, then the numbered name for the same file: a kill between the two
        // leaves `last` the newest, never one interval behind.
        self.save_checkpoint(&self.paths.checkpoint)?;
        crate::util::link_atomic(&self.paths.checkpoint, &path)?;
        let mut old: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("step_"))
            })
            .collect();
        old.sort();
        for stale in old.iter().rev().skip(KEEP_CHECKPOINTS) {
            std::fs::remove_file(stale)
                .map_err(|e| Error::io(format!("removing {}", stale.display()), e))?;
        }
        Ok(())
    }

    /// `checkpoints/last.safetensors`: written at the end and on interrupt.
    pub fn checkpoint(&self) -> Result<()> {
        self.save_checkpoint(&self.paths.checkpoint)
    }

    fn save_checkpoint(&self, path: &std::path::Path) -> Result<()> {
        let state = CheckpointState {
            m: self.optim.m.clone(),
            v: self.optim.v.clone(),
            ema: self.ema.as_ref().map(|e| e.weights.clone()),
            best: self
                .best_params
                .as_ref()
                .filter(|_| self.state.best_step != self.state.step || self.ema.is_some())
                .filter(|_| self.cfg.training.early_stopping.restore_best)
                .cloned(),
            state: serde_json::to_value(&self.state).map_err(|e| Error::Internal(e.to_string()))?,
        };
        file::save(
            path,
            self.model.as_ref(),
            &self.meta_with_summary(),
            Some(&state),
        )
    }
}

/// The time of a run, counting the seconds of the runs it resumes.
struct Clock {
    started: Instant,
    /// Seconds trained before this run (resume).
    already: f64,
    /// The step this run started at.
    first_step: u64,
}

impl Clock {
    fn elapsed(&self) -> f64 {
        self.already + self.started.elapsed().as_secs_f64()
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len.max(1));
    let style = ProgressStyle::with_template(
        "{spinner} training [{bar:30}] step {pos}/{len} | {msg} | ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}
