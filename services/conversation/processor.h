#pragma once
// One delivery, one PostgreSQL transaction: dedupe, per-conversation lock, engine, audit,
// outbox; commit, then ack.
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/pg.h"

namespace convoy::conversation {

class Processor {
 public:
  // on_commit is called after a commit that wrote outbox rows (wakes the relay).
  Processor(PgConnection& db, const SchemaRegistry& schemas, std::function<void()> on_commit);
  Disposition Handle(const Delivery& delivery);

 private:
  Status Apply(const Delivery& d, bool* wrote_outbox);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  std::function<void()> on_commit_;
};

}  // namespace convoy::conversation
