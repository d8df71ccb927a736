#pragma once
// The template catalog (issue 27, "templates in step with Meta"): per WhatsApp business account
// (WABA), each template's status, category and quality in `templates`
// (deploy/postgres/0030_templates.sql), kept current by Meta's template webhooks (inbound.template:
// message_template_status_update, message_template_quality_update, template_category_update) and
// read whole from Graph by a sync (GET /{waba_id}/message_templates, paginated).
//
// Order. Status, category and quality each keep the time Meta says they changed (the webhook's
// entry[].time; a sync's start for what it read): a change older than the one kept, delivered
// late or redelivered, changes nothing. Two changes of the same second: the one applied last.
//
// Sends. A template send is checked against the catalog of its number's WABA before any call: one
// not APPROVED in that language fails at once with the reason. A template the catalog does not
// know fails the same way once the WABA was synced; before its first sync the catalog holds only
// what webhooks told since, so an unknown template goes unchecked (Meta still refuses a bad one,
// 132001) rather than every template send of a new deployment failing until someone syncs.
// A MARKETING template goes to /{phone_number_id}/marketing_messages (Marketing Messages API).
#include <chrono>
#include <string>

#include "convoy/amqp.h"
#include "convoy/graph_numbers.h"
#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::outbound {

// What the catalog says of one send's template.
struct TemplateVerdict {
  bool allowed = true;  // false: the send fails with `code` and `reason`, without a call
  int code = 0;         // Meta's code for what it would answer (132001, 132015, 132016)
  std::string reason;
  std::string category;  // the catalog's, lower case ("marketing"); "" when it does not know
  bool checked =
      false;  // the catalog knew the template (else: unknown number, or WABA never synced)
};

// The Graph path a send goes to: "marketing_messages" for a marketing template, else "messages".
const char* SendEndpoint(bool is_template, const std::string& category);

class TemplateCatalog {
 public:
  explicit TemplateCatalog(PgConnection& db) : db_(db) {}
  // `name` in `language` as the catalog of the WABA of `phone_number_id` has it. Counted in
  // convoy_outbound_template_checks_total{result}. An error: the database could not be read.
  Result<TemplateVerdict> Check(const std::string& phone_number_id, const std::string& name,
                                const std::string& language);
  // An inbound.template (validated): applied unless older than what is kept. Ack, or the
  // database's failure for the retry tiers.
  Disposition Apply(const std::string& body);

 private:
  PgConnection& db_;
};

struct TemplateSyncSettings {
  int page_size = 100;  // templates asked per page (Graph's limit parameter)
  int max_pages = 200;  // a sync that would need more stops, recording nothing of its end
  std::chrono::milliseconds timeout{10000};
};

struct TemplateSync {
  int templates = 0, pages = 0;
  int deleted = 0;  // kept templates Graph no longer lists: now DELETED
};

// Reads every template of `waba_id` from Graph (`graph`: one of the WABA's numbers' token and
// version), page by page following paging.cursors.after while paging.next is given, and applies
// each as of the sync's start. When the last page is read, templates Graph no longer lists (and no
// webhook changed since the start) become DELETED and the sync is recorded in template_syncs.
// kUnavailable/kTimeout: Graph or the database could not be reached; kRejected: Graph refused (its
// error named); kTooLarge: more than max_pages.
Result<TemplateSync> SyncTemplates(PgConnection& db, const GraphTarget& graph,
                                   const std::string& waba_id,
                                   const TemplateSyncSettings& settings);

}  // namespace convoy::outbound
