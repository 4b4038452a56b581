"""Container runtimes behind one interface (`base.Runtime`): process, namespaces, fake."""
