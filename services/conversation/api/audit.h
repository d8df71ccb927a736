#pragma once
// The audit log (issue 30, deploy/postgres/0038_audit_log.sql): every write through this
// service's /v1/ API — who (the token's name, role, tenant), when, what (method, route template,
// target id), its filter, count and reason where the request has them, and the answer's status.
//
// Where it is written: a write that changes a conversation (conversations_api.cpp's Locked) records
// its entry inside its own transaction, before the commit, so a committed change always has its
// row and a rolled-back one none. Every other write (checklists, assignments, numbers, flows), and
// every answer that changed nothing (a refusal, a 4xx, a failure), is recorded by HandleApi right
// after its answer, on its own statement: if that insert fails the entry is logged in full at
// ERROR and counted (convoy_audit_write_failures_total), never silently dropped.
//
//   GET /v1/audit?cursor=&limit=   newest first; `next_cursor` pages on. A tenant's token reads its
//                                  tenant's entries alone; a global one every entry. Any role (a
//                                  viewer sees a reason's length, not its text).
#include <cstdint>
#include <optional>
#include <string>

#include "convoy/http.h"
#include "convoy/pg.h"
#include "convoy/status.h"
#include "convoy/tokens.h"

namespace convoy::conversation {

struct AuditEntry {
  std::string actor, role, caller_tenant;  // the caller
  std::string method, route, target;       // route: the template; target: its {id}, "" none
  std::optional<std::string> filter_json;  // the query parameters, as a JSON object
  std::optional<int64_t> count;
  std::optional<std::string> reason;
  int status = 0;
  bool recorded = false;  // set once written (in the write's transaction, or after it)
};

// Whether a request is a write the log records (anything but GET and HEAD).
bool IsWrite(const HttpRequest& request);
// The entry of a write by `caller` on `route` (a RouteRule pattern): the target is the path's
// segment where the pattern has {id}; the reason is the body's "reason" (a string, cut at 1000
// bytes); the filter the query parameters. Status and count are the handler's to set.
AuditEntry AuditOf(const HttpRequest& request, const std::string& route, const Caller& caller);
// Writes the entry (on `db`, in whatever transaction it is in) and marks it recorded.
Status RecordAudit(PgConnection& db, AuditEntry& entry);
// Records an entry not yet written, on a connection of its own; a failure is logged with the
// whole entry and counted, never thrown away silently.
void RecordAuditAfter(const std::string& pg_dsn, AuditEntry& entry);
// GET /v1/audit; `tenant` is the caller's scope (nullopt: every tenant); `mask` (a viewer): a
// reason's text is replaced by its length (a reason may name a person).
HttpResponse ListAudit(PgConnection& db, const HttpRequest& request,
                       const std::optional<std::string>& tenant, bool mask);

}  // namespace convoy::conversation
