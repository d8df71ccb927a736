#pragma once
// The outbound handlers: sends (exactly one row per dedupe key in the message log, one Graph
// call per attempt) and status webhooks applied to the log.
#include <chrono>
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"

namespace convoy::outbound {

struct GraphSettings {
  std::string base_url;  // e.g. https://graph.facebook.com/v21.0
  std::string token;
  std::chrono::milliseconds timeout{10000};
};


class Sender {
 public:
  Sender(PgConnection& db, const SchemaRegistry& schemas, GraphSettings graph, EventPublisher events);
  Disposition HandleSend(const Delivery& d);
  Disposition HandleStatus(const Delivery& d);

 private:
  Status Emit(const std::string& schema, const std::string& body_fields, const Delivery& d);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  GraphSettings graph_;
  EventPublisher events_;
};

}  // namespace convoy::outbound
