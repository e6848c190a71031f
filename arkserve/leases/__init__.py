"""Leader election: one active reconciler among several copies (issue 17; docs/kubernetes.md, "Leader election").

:mod:`.base` is the small interface (a backend that acquires, renews and releases a named lease and says who
holds it, with a fencing token), :mod:`.store` keeps the lease in the store (SQLite or PostgreSQL: any
multi-node deployment), :mod:`.kube` in a Kubernetes ``coordination.k8s.io/v1`` ``Lease``, and :mod:`.elector`
is the thread that keeps renewing it and answers ``is_leader()`` from its own monotonic clock.
"""
