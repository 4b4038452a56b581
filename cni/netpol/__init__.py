"""NetworkPolicy for the bridge pod network: the objects parsed (`spec`), what they mean
(`model`), their nftables form per node (`nft`) and the node agent that keeps both
current (`agent`)."""
