//! Every operation mode dispatches to its list of services, in order.

mod common;
use common::*;

/// `general.model_path=…` of a float model trained for a few steps.
fn trained_model(dir: &std::path::Path) -> String {
    let run = dir.join("trained");
    let ran = textzoo(&with(&tiny(&run), &["operation_mode=training"]));
    assert_eq!(ran.code, 0, "{}", ran.all());
    format!(
        "general.model_path={}",
        run.join("saved_models/model.safetensors").display()
    )
}

#[test]
fn every_mode_runs_its_services_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let model_arg = trained_model(tmp.path());
    for (_, name, services, _) in textzoo::config::MODES {
        let run = tmp.path().join(name);
        let base = tiny(&run);
        let mode = format!("operation_mode={name}");
        let ran = textzoo(&with(&base, &[&mode, &model_arg]));
        let expected: Vec<&str> = services.iter().map(|s| s.name()).collect();
        let listing = format!("operation_mode={name} runs: {}", expected.join(" → "));
        let log = std::fs::read_to_string(run.join("textzoo.log")).unwrap_or_default();
        assert!(
            log.contains(&listing),
            "{name}: log lacks `{listing}`:\n{log}\n{}",
            ran.all()
        );
        assert_ne!(ran.code, 101, "{name} panicked: {}", ran.all());
        assert!(!ran.all().contains("panicked"), "{}", ran.all());
        let first = expected[0];
        assert!(
            log.contains(&format!("[1/{}] {first}", expected.len())),
            "{name}: {log}"
        );
    }
}

#[test]
fn a_service_not_built_yet_fails_clearly_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let model_arg = trained_model(tmp.path());
    let run = tmp.path().join("run");
    let base = tiny(&run);
    let ran = textzoo(&with(&base, &["operation_mode=deployment", &model_arg]));
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.stderr.contains("not implemented yet"), "{}", ran.stderr);
    let metrics = std::fs::read_to_string(run.join("metrics.json")).unwrap();
    assert!(
        !metrics.contains("\"deployment\": {"),
        "no fake result: {metrics}"
    );
}
