//! Every registered client id at once, for the server's in-memory set of known ids
//! (an unknown id is refused without a query).

use futures::TryStreamExt as _;
use gatehouse_core::StoreError;

use crate::error::db_error;
use crate::{on_pool, SqlStore};

impl SqlStore {
    /// Calls `each` with every client id, streamed (a million ids are never held as
    /// rows at once).
    pub async fn for_each_client_id(&self, mut each: impl FnMut(&str) + Send) -> Result<u64, StoreError> {
        let mut seen = 0;
        on_pool!(self, pool => {
            let mut rows = sqlx::query_scalar::<_, String>("SELECT client_id FROM clients").fetch(pool);
            while let Some(id) = rows.try_next().await.map_err(db_error)? {
                each(&id);
                seen += 1;
            }
        });
        Ok(seen)
    }
}
