#pragma once
// The outbound handlers: sends, exactly once per dedupe key, and status webhooks applied to the
// message log.
//
// Exactly once. Every command's dedupe key has one row in outbound_messages. Before a Graph
// call the row is claimed ('sending', attempts + 1, attempt_started_at); the call carries
// biz_opaque_callback_data "convoy:<dedupe key>", which Meta echoes in the message's status
// webhooks. A row left 'sending' (the process died during the call) or 'uncertain' (no answer:
// timeout, connection lost) may have reached Meta, so it is not sent again until either a status
// webhook has settled it (then it is acked without a call) or --reconcile_seconds have passed
// without one (then Meta did not take it, and it is sent again). A Graph error answer means Meta
// did not take it ('retrying'), so the next attempt goes at once. A 2xx answer is recorded
// ('sent', the wamid) or the record alone is retried until it is: the command goes back through
// the delay queues with the wamid in x-graph-accepted, and a delivery carrying it only writes the
// record; after record_attempts it is parked with the wamid, and a replay finishes the record.
// Across a crash between Meta's answer and the record, only Meta's status webhook can tell.
//
// Pacing. Each attempt reserves a slot in the recipient's (pair) bucket and then, once that slot
// is near, in the business number's bucket; the buckets live in PostgreSQL, so every replica
// spends one budget. The reserved slots travel in the message's headers while it waits in the
// delay queues (not counted as attempts); only the last 250 ms (the shortest delay queue) are
// waited in the consumer thread, so a slow recipient or a busy number never holds up another.
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/graph_numbers.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/log.h"
#include "convoy/pg.h"
#include "guard.h"
#include "pacer.h"
#include "templates.h"
#include "thread_control.h"

namespace convoy::outbound {

struct GraphSettings {
  std::string base_url;  // the deployment's, e.g. https://graph.facebook.com/v24.0; a number's
                         // graph_version replaces it
  std::string token;  // the deployment's: what env:CONVOY_GRAPH_TOKEN means when `secrets` is empty
  std::chrono::milliseconds timeout{10000};
  // Resolves each number's graph_token_ref (convoy/graph_numbers.h); shared by the threads. Empty:
  // one that knows env:CONVOY_GRAPH_TOKEN as `token` and reads other references itself.
  std::shared_ptr<SecretRefs> secrets;
};

struct PacingSettings {
  bool enabled = true;
  // A number's rate is its registry throughput (numbers.throughput); number_rate only for a number
  // the registry does not have. Meta's default throughput: 80 messages/s per number.
  double number_rate = 80, number_burst = 20;
  double pair_rate = 1.0 / 6,
         pair_burst = 45;  // pair rate: about 1 per 6 s sustained, bursts allowed
  std::chrono::seconds rates_ttl{
      30};  // how long a number's throughput and status read from the registry are kept
};

struct SenderSettings {
  GraphSettings graph;
  PacingSettings pacing;
  // A send of a number whose Graph token cannot be resolved (graph_token_ref: env not set, file
  // unreadable) waits like a paused number's, and looks again as often; it never goes with
  // another number's token.
  // A send of a number the registry has `paused` waits (no call, no attempt counted) and looks
  // again this often; resuming the number sends what waited.
  std::chrono::milliseconds paused_recheck{30000};
  // A transient failure is retried (backing off up to the longest delay tier) until the message's
  // customer-service window closes or this long after its first attempt, whichever is sooner.
  std::chrono::seconds send_deadline{24 * 3600};
  std::chrono::seconds reconcile{30};  // how long an uncertain attempt waits for its status webhook
  // After Meta accepted a send, how many times writing that down is tried (through the delay
  // tiers: 1 s, 5 s, 30 s, 2 m, then 10 m each) before the command is parked with the wamid.
  int record_attempts = 8;
  std::function<int64_t()> now;  // seconds since the epoch (24-hour window); system clock if empty
  // Applied to every text and interactive body just before the call (nullptr: none).
  std::shared_ptr<const ContentGuard> guard;
  // An agent's photo (image.media, a stored file) goes as a signed link to convoy-media, good this
  // long from the attempt (Meta fetches it when it sends).
  std::string media_base_url, link_secret;
  std::chrono::seconds link_ttl{7 * 86400};
  // A thread_control call failing transiently is retried this long after its first attempt.
  std::chrono::seconds thread_control_deadline{600};
};

class Sender {
 public:
  Sender(PgConnection& db, const SchemaRegistry& schemas, SenderSettings settings,
         EventPublisher events);
  // outbound.send, and outbound.thread_control (Meta's thread control, thread_control.h), which
  // shares its queue to keep its place among the conversation's sends.
  Disposition HandleSend(const Delivery& d);
  // Statuses, value-level errors, marketing preferences and template changes (outbound.status).
  Disposition HandleStatus(const Delivery& d);
  // A batch of outbound.status deliveries (ConsumerOptions::batch), each as HandleStatus, with one
  // transaction and one commit for all: three statuses follow every reply, and one commit each was
  // the status path's largest cost. What is told of an agent's send, the logs and the counters
  // follow the commit. A batch that cannot be applied together (a failed status, which tells the
  // conversation and may stop marketing; a database error; a wamid conflict) is rolled back and
  // each delivery handled alone; a preference or template change is handled alone after it.
  std::vector<Disposition> HandleStatusBatch(const std::vector<Delivery>& batch);

  struct Command;  // an outbound.send's members (sender.cpp)

 private:
  // HandleSend's steps, in order. Each returns the delivery's disposition when it ends the
  // handling (settled, held, refused, paced, claimed elsewhere), nullopt to go on.
  struct Attempt;  // one claimed attempt: its time budget, the number's Graph API, the request
  static Command ParseCommand(const rapidjson::Document& cmd);
  std::optional<Disposition> SettledOrHeld(const Command& c, const Delivery& d, const LogCtx& ctx);
  std::optional<Disposition> RefuseWithoutCall(Command& c, const Delivery& d, int64_t now,
                                               const LogCtx& ctx);
  std::optional<Disposition> PrepareCall(const Command& c, const Delivery& d, const LogCtx& ctx,
                                         Attempt* a);
  std::optional<Disposition> PaceSend(const Command& c, const Delivery& d, const Attempt& a);
  std::optional<Disposition> Claim(const Command& c, const Delivery& d, const LogCtx& ctx,
                                   Attempt* a);
  Result<HttpResponse> CallGraph(const Command& c, const Attempt& a, const LogCtx& ctx);
  // The call's outcome settled: no answer, accepted (Record), refused.
  Disposition SettleNoAnswer(const Command& c, const Attempt& a, const Status& error,
                             const LogCtx& ctx);
  Disposition SettleAccepted(const Command& c, const Delivery& d, const HttpResponse& resp,
                             const LogCtx& ctx);
  Disposition SettleRefused(const Command& c, const Delivery& d, const Attempt& a,
                            const HttpResponse& resp, const LogCtx& ctx);
  // Meta accepted the send (`wamid`, "" if its answer named none): records it as sent (the
  // conversation is not told: nothing waits for it); when the record fails, retries only the record
  // (the wamid travels in a header, Graph is not called again) and parks the command after
  // record_attempts.
  Disposition Record(const Command& c, const Delivery& d, const std::string& wamid);
  // Records the send as failed for good, tells the conversation (outbound.failed), acks.
  Disposition Fail(const Command& c, const Delivery& d, int code, const std::string& reason,
                   bool dead_letter);
  Status Emit(const std::string& schema, const std::string& body_fields, const Delivery& d);
  // An agent's send (author agent:<name>) where its status now stands, to its conversation
  // (outbound.status_changed, dedupe key per send and status), which tells the business's sink.
  // Told again by every delivery that finds it so (the conversation applies each status once);
  // nothing for a bot's send or one not sent yet.
  Status EmitAgentStatus(const std::string& dedupe_key);
  // The recipient's and then the number's send slot: empty when the send may go now (after at
  // most the shortest delay queue's wait here), else the delay that keeps it until then.
  std::optional<Disposition> Pace(const Delivery& d, const Bucket& pair, const Bucket& number);
  // What the registry says of a number (kept rates_ttl): its send rate (throughput, else
  // number_rate), whether it is paused and why.
  struct KnownNumber {
    double rate;
    bool paused;
    std::chrono::steady_clock::time_point read_at;
    std::string paused_reason;
    std::string app;  // whose app secret verifies its webhooks ("" when not in the registry)
  };
  // The send waits while its number is paused (no call, no attempt counted), naming the reason.
  Disposition WaitWhilePaused(const LogCtx& ctx, const std::string& phone_number_id,
                              const KnownNumber& number);
  KnownNumber Number(const std::string& phone_number_id);
  double NumberRate(const std::string& phone_number_id) { return Number(phone_number_id).rate; }
  std::map<std::string, KnownNumber> numbers_;
  // While HandleStatusBatch applies one delivery: what it leaves for after the commit.
  struct InBatch {
    bool abandon = false;    // the batch cannot be applied together (rolled back, each alone)
    bool alone = false;      // this delivery is handled alone after the commit (nothing written)
    std::string agent_send;  // EmitAgentStatus after the commit
    std::vector<std::function<void()>> after;  // counters and logs, after the commit
  };
  InBatch* in_batch_ = nullptr;
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  SenderSettings settings_;
  EventPublisher events_;
  Pacer pacer_;
  GraphNumbers graph_numbers_;    // each number's Graph token and version
  TemplateCatalog templates_;     // each WABA's templates: what may be sent, and where
  ThreadControl thread_control_;  // pass, release, take
};

// When retrying a send ends (seconds since the epoch): its customer-service window closes (a
// free-form message, 24 h after the recipient last wrote; a template has no window) or
// `deadline` after its first attempt, whichever is sooner. *why says which.
int64_t GiveUpAt(bool is_template, int64_t last_inbound_at, int64_t first_attempt_at,
                 std::chrono::seconds deadline, std::string* why);

// The callback data a send carries, and the dedupe key it names ("" if not convoy's).
std::string CallbackFor(const std::string& dedupe_key);
std::string DedupeKeyFromCallback(const std::string& callback);

}  // namespace convoy::outbound
