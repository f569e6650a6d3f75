//! Weights as bytes: a module to burn's burnpack format and back, every parameter
//! matched (bundles and training checkpoints both use it).

use burn::module::Module;
use burn::store::ModuleRecord;

/// A module's weights as burnpack bytes.
pub fn module_bytes<M: Module>(module: M) -> Result<Vec<u8>, WeightsError> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| WeightsError::Encode(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// Loads burnpack `bytes` into `module` (every parameter must be matched).
pub fn load_module_bytes<M: Module>(module: M, bytes: Vec<u8>) -> Result<M, WeightsError> {
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| WeightsError::Decode(e.to_string()))?;
    module
        .try_load_record(record)
        .map_err(|e| WeightsError::Misfit(e.to_string()))
}

/// Why weights could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The module could not be serialised.
    #[error("cannot encode the weights: {0}")]
    Encode(String),
    /// The bytes are not a burnpack.
    #[error("not a burnpack: {0}")]
    Decode(String),
    /// The burnpack does not fit the network (a parameter missing or of another
    /// shape).
    #[error("the weights do not fit the network: {0}")]
    Misfit(String),
}
