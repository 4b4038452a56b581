"""`kubectl get` tables: the columns a real cluster prints for each kind."""
