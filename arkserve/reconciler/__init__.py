"""The reconciler: the only caller of runtimes. Makes observed state match desired state, per service."""
