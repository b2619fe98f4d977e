"""The event log's integrity: the hash chain, the Merkle tree and signed tree heads (pure)."""
