use super::*;
use serde_json::json;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../textzoo-cli/tests/fixtures/st_zoo/text_generation_user_config.yaml")
}

fn get<'a>(tree: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    let (head, rest) = match dotted.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (dotted, None),
    };
    match (tree.get(head)?, rest) {
        (v, None) => Some(v),
        (Value::Object(inner), Some(r)) => get(inner, r),
        _ => None,
    }
}

#[test]
fn the_zoo_sample_maps_every_key() {
    let m = migrate_file(&fixture()).unwrap();
    let t = &m.tree;
    let folder = absolute(fixture().parent().unwrap());
    for (key, want) in [
        ("general.project_name", json!("word_generation")),
        ("general.global_seed", json!(123)),
        ("operation_mode", json!("chain_tqe")),
        ("model.name", json!("tiny_bert_generator")),
        ("model.seq_len", json!(32)),
        ("model.embed_dim", json!(128)),
        ("model.num_layers", json!(2)),
        ("model.num_heads", json!(4)),
        ("model.ffn_dim", json!(512)),
        ("preprocessing.vocab_size", json!(4096)),
        ("training.batch_size", json!(64)),
        ("training.epochs", json!(30)),
        ("training.learning_rate", json!(0.002)),
        ("training.weight_decay", json!(0.0)),
        ("training.lr_schedule.name", json!("reduce_on_plateau")),
        ("training.lr_schedule.factor", json!(0.5)),
        ("training.lr_schedule.patience", json!(3)),
        ("training.early_stopping.patience", json!(6)),
        ("training.early_stopping.restore_best", json!(true)),
        ("prediction.prompt", json!("STM32 embedded AI")),
        ("prediction.max_tokens", json!(50)),
        ("prediction.temperature", json!(0.8)),
        ("prediction.strategy", json!("sample")),
        ("tools.stedgeai.version", json!("10.0.0")),
        ("tools.stedgeai.optimization", json!("balanced")),
        ("tools.stedgeai.on_cloud", json!(false)),
        (
            "tools.stedgeai.path_to_stedgeai",
            json!("/opt/ST/STEdgeAI/10.0/Utilities/linux/stedgeai"),
        ),
        ("deployment.hardware_setup.board", json!("STM32H7")),
        ("benchmarking.board", json!("STM32H7")),
        (
            "dataset.training_path",
            json!(folder.join("datasets/tinyshakespeare.txt")),
        ),
        ("mlflow.uri", json!(folder.join("mlruns"))),
    ] {
        assert_eq!(get(t, key), Some(&want), "{key}");
    }
    let ratio = get(t, "training.lr_schedule.min_lr_ratio").unwrap();
    assert!((ratio.as_f64().unwrap() - 0.005).abs() < 1e-12, "{ratio}");
    // Every leaf of the old file is accounted for, once.
    let text = std::fs::read_to_string(fixture()).unwrap();
    let old = crate::config::parse_yaml_tree(&text, "t").unwrap();
    let leaves: Vec<String> = flatten(&old).into_iter().map(|(k, _)| k).collect();
    for key in &leaves {
        let mapped = m.mapped.iter().filter(|x| &x.from == key).count();
        let dropped = m.dropped.iter().filter(|x| &x.from == key).count();
        assert_eq!(mapped + dropped, 1, "{key}");
    }
    let why = |key: &str| {
        m.dropped
            .iter()
            .find(|d| d.from == key)
            .unwrap()
            .why
            .clone()
    };
    assert!(why("deployment.IDE").contains("Makefile"));
    assert!(why("quantization.quantizer").contains("int8"));
    assert!(why("evaluation.sample_text").contains("prediction.prompt"));
    assert!(why("general.model_path").contains("null"));
    // The H747 board maps to the H7 profile with a note.
    let board = m
        .mapped
        .iter()
        .find(|x| x.from == "deployment.hardware_setup.board")
        .unwrap();
    assert!(board.note.as_deref().unwrap().contains("STM32H747I-DISCO"));
    // The sample's corpus is not next to it: a warning says so.
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("dataset.training_path")
                && w.contains("does not exist")
                && w.contains("corpus_path")),
        "{:?}",
        m.warnings
    );
    // The rendered file loads as a textzoo configuration, and says what was dropped.
    let rendered = render(&m, &fixture()).unwrap();
    let cfg = crate::config::parse_str(&rendered, "t", chrono::Local::now()).unwrap();
    assert_eq!(cfg.model.embed_dim, 128);
    assert!(rendered.contains("#   deployment.IDE:"), "{rendered}");
    assert!(
        rendered.contains("# WARNING: dataset.training_path"),
        "{rendered}"
    );
    let printed = report(&m);
    assert!(
        printed.contains("training.model.dff -> model.ffn_dim = 512"),
        "{printed}"
    );
}

fn migrated(yaml: &str) -> Result<Migration> {
    let tree = crate::config::parse_yaml_tree(yaml, "t").unwrap();
    let m = migrate(&tree, Path::new("/zoo/src"))?;
    check(&m)?;
    Ok(m)
}

#[test]
fn values_textzoo_cannot_take_are_refused_with_the_old_key() {
    let err = migrated("training:\n  model:\n    name: st_lstm_large\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("training.model.name") && err.contains("tiny_gpt"),
        "{err}"
    );
    let err =
        migrated("deployment:\n  hardware_setup:\n    serie: STM32U5\n    board: B-U585I-IOT02A\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("B-U585I-IOT02A") && err.contains("STM32N6570-DK"),
        "{err}"
    );
    let err = migrated("operation_mode: chain_tbqeb\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chain_tbqeb") && err.contains("chain_qd"),
        "{err}"
    );
}

#[test]
fn smaller_cases_map_as_documented() {
    let m = migrated(
        "general:\n  model_path: ../pretrained/model.h5\ndataset:\n  corpus_path: /data/c.txt\n\
         mlflow:\n  experiment_name: exp\n  uri: http://localhost:5000\n\
         training:\n  optimizer:\n    SGD:\n      learning_rate: 0.1\n\
         evaluation:\n  sample_text: hello there\n  gen_length: 12\n",
    )
    .unwrap();
    let t = &m.tree;
    assert_eq!(get(t, "dataset.training_path"), Some(&json!("/data/c.txt")));
    assert_eq!(get(t, "general.project_name"), Some(&json!("exp")));
    assert_eq!(get(t, "mlflow.uri"), Some(&json!("http://localhost:5000")));
    assert_eq!(get(t, "prediction.prompt"), Some(&json!("hello there")));
    assert_eq!(get(t, "prediction.max_tokens"), Some(&json!(12)));
    assert_eq!(
        get(t, "prediction.strategy"),
        None,
        "no temperature: greedy stays"
    );
    // No EarlyStopping callback: textzoo's early stopping is turned off.
    assert_eq!(
        get(t, "training.early_stopping.enabled"),
        Some(&json!(false))
    );
    assert_eq!(get(t, "training.learning_rate"), None);
    let why = |key: &str| {
        m.dropped
            .iter()
            .find(|d| d.from == key)
            .unwrap()
            .why
            .clone()
    };
    assert!(why("general.model_path").contains("/zoo/pretrained/model.h5"));
    assert!(why("training.optimizer.SGD.learning_rate").contains("AdamW"));
}

/// Zoo keys of the sample, for the property below.
const ZOO_KEYS: &[&str] = &[
    "general.model_path",
    "general.project_name",
    "mlflow.experiment_name",
    "mlflow.uri",
    "operation_mode",
    "dataset.corpus_path",
    "dataset.sequence_length",
    "dataset.subset_size",
    "training.model.name",
    "training.model.input_shape",
    "training.model.embedding_dim",
    "training.optimizer.Adam.learning_rate",
    "training.optimizer.SGD.momentum",
    "training.callbacks.ReduceLROnPlateau.min_lr",
    "training.callbacks.EarlyStopping.monitor",
    "evaluation.temperature",
    "tools.stedgeai.version",
    "deployment.hardware_setup.board",
    "deployment.hardware_setup.serie",
    "deployment.IDE",
    "something.unknown",
];

fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
        Just(json!({})),
    ]
}

proptest::proptest! {
    /// Whatever values a zoo file holds, migration answers (a file or a refusal), never panics,
    /// and every key is accounted for when it succeeds.
    #[test]
    fn any_zoo_values_migrate_or_are_refused(
        entries in proptest::collection::vec((0..ZOO_KEYS.len(), any_value()), 0..12)
    ) {
        let mut tree = Map::new();
        for (i, value) in entries {
            set(&mut tree, ZOO_KEYS[i], value);
        }
        if let Ok(m) = migrate(&tree, Path::new("/zoo")) {
            let _ = check(&m);
            let _ = render(&m, Path::new("/zoo/user_config.yaml"));
            let leaves = flatten(&tree).len();
            proptest::prop_assert_eq!(leaves, m.dropped.len() + m.mapped.iter()
                .filter(|x| flatten(&tree).iter().any(|(k, _)| *k == x.from)).count());
        }
    }
}
