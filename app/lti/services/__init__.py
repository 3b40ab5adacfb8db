"""LTI business logic, one module per sub-domain; functions take the acting user where
one exists and only flush (the request, job or CLI command commits).

- :mod:`.permissions` — who manages which registrations and deployments
- :mod:`.registrations` — platforms and deployments (admin page, API, CLI)
- :mod:`.dynamic` — one-time registration links and LTI Dynamic Registration
- :mod:`.http` — outbound HTTP, guarded for registration-supplied URLs
- :mod:`.keys` — tool keys: signing key, JWKS, rotation
- :mod:`.login` — OIDC login initiation (state, nonce, browser binding)
- :mod:`.launch` — launch validation, cookie-less continuation, targets
- :mod:`.provisioning` — users, roles, contexts and classes
- :mod:`.deeplinking` — the content picker and the signed response
- :mod:`.ags` — grade passback outbox
- :mod:`.nrps` — roster sync

Nothing is imported here, so :mod:`app.lti.tool` can use :mod:`.keys` while the launch
modules use the tool without an import circle.
"""
