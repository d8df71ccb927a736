#pragma once
// One delivery, one PostgreSQL transaction: dedupe, per-conversation lock, engine, audit,
// outbox; commit, then ack.
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "engine.h"

namespace convoy::conversation {

class Processor {
 public:
  // on_commit is called after a commit that wrote outbox rows (wakes the relay); clock gives
  // seconds since the epoch (the system clock when empty; tests pass a fake).
  Processor(PgConnection& db, const SchemaRegistry& schemas, const Engine& engine, std::function<void()> on_commit,
            std::function<int64_t()> clock = nullptr);
  Disposition Handle(const Delivery& delivery);

 private:
  Status Apply(const Delivery& d, bool* wrote_outbox);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  const Engine& engine_;
  std::function<void()> on_commit_;
  std::function<int64_t()> clock_;
};

}  // namespace convoy::conversation
