"""Sharing business logic, one module per sub-domain:

- :mod:`.manifest` — what a release says about an item, hashes, the licence check;
- :mod:`.diff` — field-level difference between two manifests;
- :mod:`.catalogs` — publisher: catalogs, releases, withdrawals;
- :mod:`.subscriptions` — subscriber: subscribe, pending diff, accept, visibility;
- :mod:`.keys` — instance keys and HTTP Message Signatures;
- :mod:`.federation` — the signed feed and remote sync.

Every function takes the acting user and flushes; the caller commits.
"""
