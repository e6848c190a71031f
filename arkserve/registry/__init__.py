"""The platform's image registry: CNCF Distribution (``docker-registry``) run as a part, and what it needs from us.

- ``tokens``: the signing key + self-signed certificate in the data dir, and JWTs in Distribution's token format;
- ``names``: image references, repository names, namespaces, the short form ``repo:tag``;
- ``policy``: who may pull and push which repository (pure, table-tested);
- ``config``: the Distribution configuration file arkserve writes;
- ``catalogue``: reads and deletes through the registry's HTTP API with an internal token;
- ``process``: runs the binary (``arkserve registry``, supervised by ``arkserve up --runtime docker``);
- ``pulls``: pull tokens for the reconciler (one repository, ``pull``), ``progress``: pull progress in words;
- ``maintenance``: garbage collection with the registry read-only.
"""
