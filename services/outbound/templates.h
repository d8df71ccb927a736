#pragma once
// The template catalog (issue 27, "templates in step with Meta"): per WhatsApp business account
// (WABA), each template's status, category and quality in `templates`
// (deploy/postgres/0030_templates.sql), kept current by Meta's template webhooks (inbound.template:
// message_template_status_update, message_template_quality_update, template_category_update).
//
// Order. Status, category and quality each keep the time Meta says they changed (the webhook's
// entry[].time): a change older than the one kept, delivered late or redelivered, changes nothing.
// Two changes of the same second: the one applied last.
//
// Sends. A template send is checked against the catalog of its number's WABA before any call: one
// not APPROVED in that language fails at once with the reason. A template the catalog does not
// know goes unchecked: the catalog holds only what webhooks told since it was made (Meta still
// refuses a bad one, 132001).
// A MARKETING template goes to /{phone_number_id}/marketing_messages (Marketing Messages API).

#include <string>

#include "convoy/amqp.h"
#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::outbound {

// What the catalog says of one send's template.
struct TemplateVerdict {
  bool allowed = true;  // false: the send fails with `code` and `reason`, without a call
  int code = 0;         // Meta's code for what it would answer (132001, 132015, 132016)
  std::string reason;
  std::string category;  // the catalog's, lower case ("marketing"); "" when it does not know
  bool checked = false;  // the catalog knew the template (else: unknown number, or WABA never synced)
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

}  // namespace convoy::outbound
