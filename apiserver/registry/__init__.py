"""The resource registry: one table describing every served kind, from which discovery,
OpenAPI, routing, tables and validation are derived. CRDs add rows at run time."""
