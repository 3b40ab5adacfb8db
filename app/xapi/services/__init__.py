"""Learning Record Store services, one module per sub-domain.

Functions take the acting :class:`Principal` (an LRS client, a launch token, or the
platform itself) explicitly and never look at the request.  They only flush; the request
(or the CLI command, or the job) commits once.  Errors are :mod:`app.errors` classes whose
status is the one the xAPI spec names (400 for every invalid statement or parameter, 409
for a conflicting id, 412 for a failed precondition, 403/401 for credentials).

==============  ===========================================================================
module          sub-domain
==============  ===========================================================================
``auth``        clients, launch tokens, :class:`Principal`, client management by admins
``identity``    agent/activity identity keys, the actor of a platform user, the authority
``signatures``  "same statement?" comparison and the JWS check of signed statements
``store``       validating and storing statements (idempotent, conflict-safe)
``query``       single statements, filtered pages, activities and agents
``formats``     ``exact`` / ``ids`` / ``canonical`` output
``documents``   State, Activity Profile and Agent Profile documents
``forwarding``  the outbox to a district's external LRS
==============  ===========================================================================

The names below are the package's public surface (views, CLI, emission and tests use
them through ``from app.xapi import services``).
"""

from app.xapi.services.auth import (
    SCOPES,
    SUPPORTED_VERSIONS,
    Principal,
    authenticate,
    create_client,
    create_client_as,
    issue_launch_token,
    launch_auth_header,
    list_clients,
    platform_principal,
    principal_for_client,
    principal_for_launch_token,
    remember_version,
    revoke_client,
    revoke_client_as,
)
from app.xapi.services.documents import (
    DocumentScope,
    PreconditionFailed,
    delete_documents,
    get_document,
    list_document_ids,
    save_document,
)
from app.xapi.services.formats import page_json, render_statement, statement_json
from app.xapi.services.forwarding import (
    FORWARD_VERSIONS,
    forward_due,
    forward_job,
    list_forward_targets,
    outbox_filled,
    outbox_size,
    pending_by_target,
    set_forward_target,
    set_forward_target_as,
    start_forwarding,
)
from app.xapi.services.identity import (
    actor_for,
    agent_key,
    person_for,
    platform_authority,
    sha1,
    user_district_id,
)
from app.xapi.services.query import (
    StatementQuery,
    attachments_for,
    consistent_through,
    get_activity,
    get_statement,
    parse_agent_param,
    parse_query,
    query_from_more,
    query_statements,
)
from app.xapi.services.signatures import same_statement, verify_signature
from app.xapi.services.store import store_statements

__all__ = [
    "FORWARD_VERSIONS",
    "list_forward_targets",
    "pending_by_target",
    "set_forward_target_as",
    "SCOPES",
    "SUPPORTED_VERSIONS",
    "DocumentScope",
    "Principal",
    "PreconditionFailed",
    "StatementQuery",
    "actor_for",
    "agent_key",
    "attachments_for",
    "authenticate",
    "consistent_through",
    "create_client",
    "create_client_as",
    "delete_documents",
    "forward_due",
    "forward_job",
    "get_activity",
    "get_document",
    "get_statement",
    "issue_launch_token",
    "launch_auth_header",
    "list_clients",
    "list_document_ids",
    "outbox_filled",
    "outbox_size",
    "page_json",
    "parse_agent_param",
    "parse_query",
    "person_for",
    "platform_authority",
    "platform_principal",
    "principal_for_client",
    "principal_for_launch_token",
    "query_from_more",
    "query_statements",
    "remember_version",
    "render_statement",
    "revoke_client",
    "revoke_client_as",
    "same_statement",
    "save_document",
    "set_forward_target",
    "sha1",
    "start_forwarding",
    "statement_json",
    "store_statements",
    "user_district_id",
    "verify_signature",
]
