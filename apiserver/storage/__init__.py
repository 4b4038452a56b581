"""Storage backends behind one interface (interface.py): SQLite revision log today, etcd later."""
