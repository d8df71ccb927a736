#pragma once
// Token buckets in PostgreSQL, so that every outbound replica spends one budget: Meta's
// throughput limit per business number and its pair-rate limit per recipient.
//
// Reserve() always takes the bucket's next token, even one that is only refilled in the future
// (the bucket goes below zero), and says how long until that token's slot. Reservations are
// handed out in order and never twice, so the sends happen at the bucket's rate however many
// replicas and threads ask; the caller keeps its message in a delay queue until shortly before
// the slot instead of sleeping, so a wait never holds up other recipients or numbers.
#include <string>

#include "convoy/pg.h"
#include "convoy/status.h"

namespace convoy::outbound {

struct Bucket {
  std::string key;   // "number:<phone_number_id>", "pair:<phone_number_id>:<wa_id>"
  double rate = 1;   // tokens per second
  double burst = 1;  // capacity
};

class Pacer {
 public:
  explicit Pacer(PgConnection& db) : db_(db) {}
  // Takes the bucket's next token: seconds from now until its slot (0: now). One statement.
  Result<double> Reserve(const Bucket& bucket);
  // Meta said slow down: the bucket is emptied and owes `seconds` of refill before its next token.
  Status Penalize(const Bucket& bucket, double seconds);

 private:
  PgConnection& db_;
};

}  // namespace convoy::outbound
