#include "convoy/events.h"

#include <glog/logging.h>

#include "convoy/json.h"
#include "convoy/topology.h"

namespace convoy {

AmqpMessage EventFor(const Delivery& command, const std::string& schema,
                     const std::string& fields_json) {
  AmqpMessage m;
  m.exchange = exchanges::kEvents;
  m.routing_key = schema;
  std::string dedupe = command.Header(headers::kDedupeKey);
  m.message_id = schema + ":" + dedupe;
  m.headers = {{headers::kDedupeKey, m.message_id},
               {headers::kCorrelationId, command.Header(headers::kCorrelationId)},
               {headers::kConversationKey, command.Header(headers::kConversationKey)}};
  m.body = R"({"schema":")" + schema + R"(","version":1,"correlation_id":")" +
           JsonEscape(command.Header(headers::kCorrelationId)) + R"(","dedupe_key":")" +
           JsonEscape(dedupe) + R"(","conversation_key":")" +
           JsonEscape(command.Header(headers::kConversationKey)) + "\"," + fields_json + "}";
  return m;
}

LogCtx CommandContext(const Delivery& d, const char* queue) {
  return LogCtx(queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
                d.Header(headers::kDedupeKey));
}

std::optional<Disposition> RefuseInvalid(const Delivery& d, const SchemaRegistry& schemas,
                                         const LogCtx& ctx) {
  Status valid = schemas.Validate(d.body);
  if (valid.ok()) return std::nullopt;
  LOG(WARNING) << ctx << "event=invalid_command reason=" << valid.message();
  return Disposition::DeadLetter(valid.ToString());
}

}  // namespace convoy
