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

/// `general.model_path=…` of that model quantized.
fn quantized_model(dir: &std::path::Path, float_arg: &str) -> String {
    let run = dir.join("quantized");
    let ran = textzoo(&with(
        &tiny(&run),
        &["operation_mode=quantization", float_arg],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());
    format!(
        "general.model_path={}",
        run.join("quantized_models/model_int8.safetensors")
            .display()
    )
}

#[test]
fn every_mode_runs_its_services_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let float_arg = trained_model(tmp.path());
    let int8_arg = quantized_model(tmp.path(), &float_arg);
    for (_, name, services, _) in textzoo::config::MODES {
        let run = tmp.path().join(name);
        let base = tiny(&run);
        let mode = format!("operation_mode={name}");
        // Deployment and benchmarking start from an int8 model; the rest from the float one.
        let int8_first = matches!(services[0].name(), "deployment" | "benchmarking");
        let model_arg = if int8_first { &int8_arg } else { &float_arg };
        let quick = [
            "benchmarking.emulate=false",
            "benchmarking.repeats=1",
            "benchmarking.num_tokens=2",
            "deployment.hardware_setup.board=host",
        ];
        let mut args = with(&base, &[&mode, model_arg]);
        args.extend(quick);
        let ran = textzoo(&args);
        let expected: Vec<&str> = services.iter().map(|s| s.name()).collect();
        let listing = format!("operation_mode={name} runs: {}", expected.join(" → "));
        let log = std::fs::read_to_string(run.join("textzoo.log")).unwrap_or_default();
        assert!(
            log.contains(&listing),
            "{name}: log lacks `{listing}`:\n{log}\n{}",
            ran.all()
        );
        assert_eq!(ran.code, 0, "{name}: {}", ran.all());
        assert!(!ran.all().contains("panicked"), "{}", ran.all());
        let first = expected[0];
        assert!(
            log.contains(&format!("[1/{}] {first}", expected.len())),
            "{name}: {log}"
        );
    }
}

/// A mode that starts from a model, given none (and no bundled one: general.pretrained=null),
/// says which kind of model and which key, with exit code 2 and no run directory; one given of
/// the wrong kind is refused the same way.
#[test]
fn modes_that_start_from_a_model_say_what_they_need() {
    let tmp = tempfile::tempdir().unwrap();
    for (_, name, services, _) in textzoo::config::MODES {
        if matches!(services[0].name(), "training" | "preprocessing") {
            continue;
        }
        let run = tmp.path().join(name);
        let mode = format!("operation_mode={name}");
        let ran = textzoo(&with(&tiny(&run), &[&mode, "general.pretrained=null"]));
        assert_eq!(ran.code, 2, "{name}: {}", ran.all());
        assert!(
            ran.stderr.contains("general.model_path") && ran.stderr.contains(name),
            "{name}: {}",
            ran.stderr
        );
        assert!(!ran.all().contains("panicked"), "{}", ran.all());
        assert!(is_absent_or_empty(&run), "{name}: a run directory was made");
    }
    let float_arg = trained_model(tmp.path());
    let run = tmp.path().join("bench_float");
    let ran = textzoo(&with(
        &tiny(&run),
        &["operation_mode=benchmarking", &float_arg],
    ));
    assert_eq!(ran.code, 2, "{}", ran.all());
    assert!(
        ran.stderr.contains("benchmarking needs an int8 model") && ran.stderr.contains("chain_qb"),
        "{}",
        ran.stderr
    );
    assert!(is_absent_or_empty(&run));
}

/// `model.float_model_path`, the model zoo's name for `general.model_path`: either key, or
/// both with the same file; two different files are refused naming both keys.
#[test]
fn the_zoo_key_float_model_path_names_the_model_to_start_from() {
    let tmp = tempfile::tempdir().unwrap();
    let float_arg = trained_model(tmp.path());
    let path = float_arg.trim_start_matches("general.model_path=");
    let zoo_arg = format!("model.float_model_path={path}");
    let run = tmp.path().join("zoo");
    let ran = textzoo(&with(&tiny(&run), &["operation_mode=chain_eqe", &zoo_arg]));
    assert_eq!(ran.code, 0, "{}", ran.all());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert!(m["float"]["val_loss"].as_f64().is_some() && m["int8"]["val_loss"].as_f64().is_some());

    let both = tmp.path().join("both");
    let ran = textzoo(&with(
        &tiny(&both),
        &["operation_mode=evaluation", &zoo_arg, &float_arg],
    ));
    assert_eq!(ran.code, 0, "{}", ran.all());

    let other = tmp.path().join("other.safetensors");
    std::fs::copy(path, &other).unwrap();
    let conflict = tmp.path().join("conflict");
    let ran = textzoo(&with(
        &tiny(&conflict),
        &[
            "operation_mode=chain_eqe",
            &zoo_arg,
            &format!("general.model_path={}", other.display()),
        ],
    ));
    assert_eq!(ran.code, 2, "{}", ran.all());
    for part in [
        "model.float_model_path",
        "general.model_path",
        path,
        "other.safetensors",
    ] {
        assert!(ran.stderr.contains(part), "`{part}` not in {}", ran.stderr);
    }
    assert!(!conflict.exists());
}
