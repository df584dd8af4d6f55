//! Every example configuration loads and validates, and there is one per operation mode.

use std::path::Path;
use textzoo::config::{self, MODES};

#[test]
fn one_valid_example_per_mode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("config_file_examples");
    for (mode, name, _, _) in MODES {
        let path = dir.join(format!("{name}.yaml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let cfg = config::parse_str(&text, name, chrono::Local::now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        config::validate_values(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cfg.operation_mode, *mode, "{name}.yaml sets another mode");
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = config::parse_str(&text, "x", chrono::Local::now())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        config::validate_values(&cfg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let user = std::fs::read_to_string(root.join("user_config.yaml")).unwrap();
    let cfg = config::parse_str(&user, "user_config.yaml", chrono::Local::now()).unwrap();
    config::validate_values(&cfg).unwrap();
}
