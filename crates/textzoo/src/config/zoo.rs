//! Recognising a configuration written for the STM32 model zoo, whose keys textzoo's strict
//! schema refuses one at a time: such a file gets one message pointing to
//! `textzoo migrate-config` instead of "unknown key" for its first zoo key.

use serde_json::{Map, Value};

/// Keys only the zoo's layout has (none exists in textzoo's schema).
const ZOO_KEYS: &[&str] = &[
    "dataset.corpus_path",
    "dataset.sequence_length",
    "dataset.max_vocab_size",
    "training.model",
    "training.optimizer",
    "training.callbacks",
    "quantization.quantizer",
    "quantization.quantization_type",
    "evaluation.sample_text",
    "evaluation.gen_length",
    "deployment.IDE",
    "deployment.hardware_setup.serie",
    "general.logs_dir",
    "general.saved_models_dir",
    "general.gpu_memory_limit",
    "tools.path_to_cubeIDE",
];

/// The first zoo-only key the tree has, if any.
pub fn zoo_key(tree: &Map<String, Value>) -> Option<&'static str> {
    ZOO_KEYS.iter().copied().find(|dotted| {
        let mut node = tree;
        let mut parts = dotted.split('.').peekable();
        while let Some(part) = parts.next() {
            match (node.get(part), parts.peek()) {
                (Some(_), None) => return true,
                (Some(Value::Object(inner)), Some(_)) => node = inner,
                _ => return false,
            }
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zoo_only_keys_are_recognised() {
        let zoo = json!({"dataset": {"corpus_path": "a.txt"}, "training": {"batch_size": 3}});
        assert_eq!(
            zoo_key(zoo.as_object().unwrap()),
            Some("dataset.corpus_path")
        );
        let nested = json!({"training": {"model": {"name": "tiny_gpt"}}});
        assert_eq!(zoo_key(nested.as_object().unwrap()), Some("training.model"));
        let ours = json!({"dataset": {"training_path": "a.txt"}, "model": {"name": "gru"}});
        assert_eq!(zoo_key(ours.as_object().unwrap()), None);
        let odd = json!({"dataset": "corpus_path"});
        assert_eq!(zoo_key(odd.as_object().unwrap()), None);
    }
}
