"""The event log's integrity: hash chain now, Merkle tree and evidence later (pure)."""
