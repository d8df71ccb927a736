#pragma once
// The template catalog (issue 27, "templates in step with Meta"): per WhatsApp business account
// (WABA), each template's status, category and quality in `templates`
// (deploy/postgres/0030_templates.sql), kept current by Meta's template webhooks (inbound.template:
// message_template_status_update, message_template_quality_update, template_category_update).
//
// Order. Status, category and quality each keep the time Meta says they changed (the webhook's
// entry[].time): a change older than the one kept, delivered late or redelivered, changes nothing.
// Two changes of the same second: the one applied last.

#include "convoy/amqp.h"
#include "convoy/pg.h"

namespace convoy::outbound {

class TemplateCatalog {
 public:
  explicit TemplateCatalog(PgConnection& db) : db_(db) {}
  // An inbound.template (validated): applied unless older than what is kept. Ack, or the
  // database's failure for the retry tiers.
  Disposition Apply(const std::string& body);

 private:
  PgConnection& db_;
};

}  // namespace convoy::outbound
