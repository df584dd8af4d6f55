//! TFLite int8 export (in progress).

use crate::error::{Error, Result};
use crate::export::spec::Spec;

pub fn write(_spec: &Spec, _include_embedding: bool) -> Result<Vec<u8>> {
    Err(Error::Usage("TFLite export is not implemented yet".into()))
}

pub fn embedding_header(_spec: &Spec) -> Result<String> {
    Err(Error::Usage("TFLite export is not implemented yet".into()))
}
