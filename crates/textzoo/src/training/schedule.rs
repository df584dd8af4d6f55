//! Learning-rate schedules: linear warm-up, then constant, cosine, step decay or
//! reduce-on-plateau.

use crate::config::{LrSchedule, LrScheduleKind};

/// The learning rate at `step` (0-based) for a run of `horizon` steps. `plateau_scale` is the
/// factor reduce-on-plateau has accumulated so far (1 for the other schedules).
pub fn learning_rate(
    base: f64,
    s: &LrSchedule,
    step: u64,
    horizon: u64,
    plateau_scale: f64,
) -> f64 {
    if step < s.warmup_steps {
        return base * (step + 1) as f64 / s.warmup_steps as f64;
    }
    let factor = match s.name {
        LrScheduleKind::Constant => 1.0,
        LrScheduleKind::Cosine => {
            let span = horizon.saturating_sub(s.warmup_steps).max(1) as f64;
            let progress = ((step - s.warmup_steps) as f64 / span).min(1.0);
            s.min_lr_ratio
                + (1.0 - s.min_lr_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
        LrScheduleKind::Step => s.gamma.powi(((step - s.warmup_steps) / s.step_size) as i32),
        LrScheduleKind::ReduceOnPlateau => plateau_scale,
    };
    base * factor
}

/// The step a time-limited run will end at, from the pace so far: `step` steps done in all,
/// `session_steps` of them in `session_secs` of this process (validation pauses included),
/// `remaining_secs` left. Never before the next step.
///
/// Why re-estimated during the run: a single probe over the first steps sees neither the
/// steady pace (those steps are slower: cold caches) nor the validation pauses; on the
/// reference runs it predicted a fifth too few steps, and the cosine sat at its floor for the
/// last fifth of a 10-minute run.
pub fn time_horizon(step: u64, session_steps: u64, session_secs: f64, remaining_secs: f64) -> u64 {
    let per_step = session_secs / session_steps.max(1) as f64;
    let ahead = (remaining_secs.max(0.0) / per_step.max(1e-9)).min(1e12) as u64;
    step + ahead.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(name: LrScheduleKind) -> LrSchedule {
        LrSchedule {
            name,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            step_size: 100,
            gamma: 0.5,
            factor: 0.5,
            patience: 2,
        }
    }

    #[test]
    fn a_time_limited_horizon_follows_the_pace_so_far() {
        // 100 steps in 10 s, 50 s left: 500 more at 0.1 s each.
        assert_eq!(time_horizon(100, 100, 10.0, 50.0), 600);
        // After a resume only this session's pace counts: 20 steps in 4 s, 10 s left.
        assert_eq!(time_horizon(1020, 20, 4.0, 10.0), 1070);
        // Out of time: the next step. Absurd paces neither divide by zero nor overflow.
        assert_eq!(time_horizon(7, 7, 1.0, -3.0), 8);
        assert_eq!(time_horizon(0, 0, 0.0, 1e-3), 1_000_000);
        assert_eq!(time_horizon(5, 1, 1e-30, 1e30), 1_000_000_000_005);
    }

    #[test]
    fn warmup_then_each_shape() {
        let c = sched(LrScheduleKind::Cosine);
        assert!((learning_rate(1.0, &c, 0, 1000, 1.0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(1.0, &c, 9, 1000, 1.0) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1.0, &c, 10, 1000, 1.0) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1.0, &c, 505, 1000, 1.0) - 0.55).abs() < 1e-3);
        assert!((learning_rate(1.0, &c, 1000, 1000, 1.0) - 0.1).abs() < 1e-12);
        assert!(
            (learning_rate(1.0, &c, 5000, 1000, 1.0) - 0.1).abs() < 1e-12,
            "stays at the floor"
        );
        let s = sched(LrScheduleKind::Step);
        assert_eq!(learning_rate(1.0, &s, 109, 0, 1.0), 1.0);
        assert_eq!(learning_rate(1.0, &s, 110, 0, 1.0), 0.5);
        assert_eq!(learning_rate(1.0, &s, 310, 0, 1.0), 0.125);
        assert_eq!(
            learning_rate(2.0, &sched(LrScheduleKind::Constant), 500, 0, 1.0),
            2.0
        );
        assert_eq!(
            learning_rate(2.0, &sched(LrScheduleKind::ReduceOnPlateau), 500, 0, 0.25),
            0.5
        );
    }
}
