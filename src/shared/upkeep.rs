//! What the store's upkeep (`actors::store_bounds`) needs of the shared store: its size
//! (the data bucket's stream plus the bodies object store's).

use super::{SharedError, SharedStore};
use crate::bus::subjects::{BODIES_BUCKET, DATA_BUCKET};

impl SharedStore {
    /// Bytes the shared data takes in JetStream (per copy: each node of an R3 cluster holds
    /// this much): the data bucket's stream and the bodies object store's.
    pub async fn stored_bytes(&self) -> Result<u64, SharedError> {
        let mut total = 0;
        for stream in [format!("KV_{DATA_BUCKET}"), format!("OBJ_{BODIES_BUCKET}")] {
            let info = self
                .inner
                .js
                .get_stream(&stream)
                .await
                .map_err(SharedError::boxed("read the store's size"))?
                .get_info()
                .await
                .map_err(SharedError::boxed("read the store's size"))?;
            total += info.state.bytes;
        }
        Ok(total)
    }
}
