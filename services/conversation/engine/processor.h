#pragma once
// One delivery, one PostgreSQL transaction: dedupe, per-conversation lock, engine, audit,
// outbox; commit, then ack. A batch of deliveries (those the broker already sent) shares one
// transaction: grouped by conversation, in WhatsApp-timestamp order, each conversation locked
// once; if anything in it fails, each delivery is retried in a transaction of its own, so one
// bad delivery never holds back the others and each keeps its own disposition.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "engine/engine.h"
#include "store/assignments.h"
#include "store/transcript.h"

namespace convoy::conversation {

// The tokens a message is taken to cost an extractor: 4 + ceil(characters / 4) (OpenAI's rule of
// thumb for English: about 4 characters a token, and a few tokens of framing per message).
int ApproxTokens(const std::string& text);

class Processor {
 public:
  // on_commit is called after a commit that wrote outbox rows (wakes the relay); clock gives
  // seconds since the epoch (the system clock when empty; tests pass a fake).
  Processor(PgConnection& db, const SchemaRegistry& schemas, const Engine& engine,
            std::function<void()> on_commit, std::function<int64_t()> clock = nullptr);
  Disposition Handle(const Delivery& delivery);
  std::vector<Disposition> HandleBatch(const std::vector<Delivery>& batch);
  // When a user's message is answered, first mark it read and show "typing…": the first answer
  // carries it (outbound.send's mark_read), one Graph call just before that send. Off unless set.
  void set_typing_indicator(bool on) { typing_indicator_ = on; }
  // How checklist assignments end and the next one starts (their TTL, their flow).
  void set_assignments(AssignmentSettings settings) { assignments_ = std::move(settings); }
  // The token budget of the context kept for a flow's extractor (conversation_context).
  void set_context_budget(int tokens) { context_budget_ = tokens; }

  struct Parsed;  // a delivery's members, read once (defined in processor_internal.h)

 private:
  struct Applied;  // what a delivery did inside the transaction, reported after commit
  // Schema check and parse; a dead letter (with its reason) for a body that cannot be applied, or
  // the outcome of one that is no conversation's (an account update, applied at once).
  std::optional<Disposition> Prepare(const Delivery& d, Parsed* p);
  Status ApplyInTransaction(Parsed p, Applied* a);
  // One person, one conversation: the conversation a message's identities (phone, BSUID) belong
  // to, linking new identities and applying identity changes (system messages), under advisory
  // locks on the identities. Sets p->conversation_key.
  Status ResolveIdentity(Parsed* p, Applied* a);
  void Report(const Applied& a);
  // A customer message while a human owns the conversation: to the business's inbox.
  Status ForwardToInbox(const Parsed& p, const Ownership& own);
  // Records a flow-with-extractor conversation's messages (within the budget) and gives an
  // outbound.extract its context.
  Status RecordContext(const Parsed& p, const ConversationState& before, const Transition& t);
  bool typing_indicator_ = false;
  int context_budget_ = 2000;
  AssignmentSettings assignments_;
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  const Engine& engine_;
  std::function<void()> on_commit_;
  std::function<int64_t()> clock_;
};

}  // namespace convoy::conversation
