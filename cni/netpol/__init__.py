"""NetworkPolicy for the bridge pod network: the semantics (`model`), their nftables
form per node (`nft`) and the node agent that keeps both current (`agent`)."""
