#pragma once
// convoyctl: what an operator at 3 a.m. needs without psql or the management UI. Each command is a
// function over a real broker (AMQP) and database (PostgreSQL) that writes text or JSON and
// returns the process's exit code; main.cpp only parses the command line.
//   dlq list|show|replay|purge    parked messages (<queue>.dlq) by queue, reason and age
//   conversation show <who>       identity, flow and step, fields, transitions, sends, deliveries
//   conversation show <id>        the transcript (conversation's API: GET /v1/conversations/{id})
//   conversation list             conversations by owner, number, open window (GET
//   /v1/conversations) deliveries list|replay        results to the business's sinks (outbound's
//   admin API) templates list|sync           each WABA's template catalog, synced from Graph
//   (outbound's admin API) health                        thresholds: exit 0 ok, 1 warning, 2
//   critical stats                         throughput, latency percentiles and outcomes over a
//   window
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "convoy/amqp.h"

namespace convoy::ctl {

struct Options {
  std::string amqp_url, pg_dsn, outbound_url, admin_token;
  std::string conversation_url =
      "http://127.0.0.1:8081";  // convoy-conversation's API (conversation list|show <id>)
  bool json = false;
};

// Exit codes.
constexpr int kOk = 0;
constexpr int kWarning = 1;   // health: a threshold passed
constexpr int kCritical = 2;  // health: far past one, or a check could not run
constexpr int kUsage = 64;    // bad arguments (EX_USAGE)
constexpr int kFailed = 69;   // the broker, database or API could not be used (EX_UNAVAILABLE)
constexpr int kNotFound = 3;  // nothing matched (show)

// Which parked messages: empty members match everything.
struct DlqFilter {
  std::string queue;    // a work queue ("outbound.send"); "" -> every one
  std::string reason;   // a substring of the first or last reason, any case
  int64_t since = 0;    // parked at or after (seconds since the epoch)
  int64_t until = 0;    // parked before (seconds since the epoch); 0 -> no bound
  std::string id;       // the message id (its dedupe key)
  std::string code;     // the last failure's own code (x-last-error-code: a Graph error.code)
  std::string content;  // a substring of the body, any case
  size_t limit = 0;     // 0 -> no limit
};

struct ParkedMessage {
  std::string id, queue, first_reason, last_reason, correlation_id, conversation_key, body;
  std::string error_code;  // x-last-error-code, "" when the failure had none
  int attempts = 0, replays = 0;
  int64_t parked_at = 0;  // 0: parked by the broker (delivery limit), not by a consumer
  std::vector<std::pair<std::string, std::string>> headers;
};

// One parked message as `dlq list --json` writes it (id, queue, reasons, error_code, attempts,
// replays, parked_at, age_seconds, correlation_id, conversation_key), with its headers and body
// when asked (`dlq show --json`: both).
std::string ParkedJson(const ParkedMessage& m, bool headers, bool body);

// Parked messages matching the filter, left where they are.
Result<std::vector<ParkedMessage>> ListParked(const std::string& amqp_url, const DlqFilter& filter);
// Each match back to its work queue with a fresh attempt count (the history kept in
// x-replay-history); dry_run lists them only. How many.
Result<size_t> ReplayParked(const std::string& amqp_url, const DlqFilter& filter, bool dry_run);
Result<size_t> PurgeParked(const std::string& amqp_url, const DlqFilter& filter);
// The same with the broker connection given whole (a service's ops user: convoy-conversation's
// operations API); the URL forms above take convoyctl's credentials from its environment.
Result<std::vector<ParkedMessage>> ListParked(const AmqpOptions& broker, const DlqFilter& filter);
Result<size_t> ReplayParked(const AmqpOptions& broker, const DlqFilter& filter, bool dry_run);
Result<size_t> PurgeParked(const AmqpOptions& broker, const DlqFilter& filter);

// One work queue as the broker holds it now: ready messages (a partitioned queue's partitions
// summed), consumers, and its parking queue's depth.
struct QueueDepth {
  std::string queue;
  uint64_t ready = 0, consumers = 0, parked = 0;
  int partitions = 0;  // 0: not partitioned
  // Each part's name and ready messages: its partitions, or the queue itself.
  std::vector<std::pair<std::string, uint64_t>> parts;
};
// Every work queue of convoy's topology, by passive declares (no right on the queues needed).
Result<std::vector<QueueDepth>> QueueDepths(const AmqpOptions& broker);

int DlqList(const Options& o, const DlqFilter& f, std::ostream& out, std::ostream& err);
int DlqShow(const Options& o, const DlqFilter& f, std::ostream& out, std::ostream& err);
int DlqReplay(const Options& o, const DlqFilter& f, bool dry_run, std::ostream& out,
              std::ostream& err);
// yes: confirmed (--yes, or the answer to the prompt, which main asks).
int DlqPurge(const Options& o, const DlqFilter& f, bool yes, std::ostream& out, std::ostream& err);

// who: a phone number, a BSUID, or a conversation key ("<phone_number_id>:<identity>").
int ConversationShow(const Options& o, const std::string& who, const std::string& phone_number_id,
                     int limit, std::ostream& out, std::ostream& err);

// Whether `who` is a conversation's id (a uuid: 8-4-4-4-12 hex digits), which `conversation show`
// reads through the API as a transcript, rather than a phone, BSUID or key.
bool IsConversationId(const std::string& who);
// id: the conversation's id; messages: how many of its last messages (1..1000). Text: one line per
// message, "time  author  kind  body  [status]".
int ConversationTranscript(const Options& o, const std::string& id, int messages, std::ostream& out,
                           std::ostream& err);
// query: "owner=human&number=...&status=open&limit=..." (may be empty). Text: one line per
// conversation.
int ConversationList(const Options& o, const std::string& query, std::ostream& out,
                     std::ostream& err);

int DeliveriesList(const Options& o, const std::string& query, std::ostream& out,
                   std::ostream& err);
int DeliveriesReplay(const Options& o, const std::string& body, std::ostream& out,
                     std::ostream& err);
// query: "waba_id=...&status=..." (may be empty); waba_id: the WABA whose catalog is read from
// Graph.
int TemplatesList(const Options& o, const std::string& query, std::ostream& out, std::ostream& err);
int TemplatesSync(const Options& o, const std::string& waba_id, std::ostream& out,
                  std::ostream& err);

struct HealthThresholds {
  int64_t stuck = 5;            // conversations waiting on an effect past its due time
  int64_t stuck_after = 300;    // seconds past due before a command counts as stuck
  int64_t parked = 10;          // messages in parking queues
  int64_t errors = 10;          // failed sends and delivery attempts in the last hour
  double p95_seconds = 2.0;     // webhook-to-send latency, last hour
  double failed_percent = 1.0;  // sends failed for good, among those settled in the last hour
};
int Health(const Options& o, const HealthThresholds& t, std::ostream& out, std::ostream& err);

// Health's checks, for callers that show them their own way (the console's operations screen):
// the same queries and thresholds as `convoyctl health`. pg_dsn "" or broker null: those checks
// are critical with an error saying so.
struct HealthCheck {
  std::string name;
  double value = 0, threshold = 0;
  std::string unit, error;
  int level = kOk;  // kOk, kWarning (past the threshold), kCritical (past twice it, or not checked)
};
std::vector<HealthCheck> CheckHealth(const std::string& pg_dsn, const AmqpOptions* broker,
                                     const HealthThresholds& t);
// The worst level of the checks; and a level's name: "ok", "warning", "critical".
int WorstLevel(const std::vector<HealthCheck>& checks);
const char* LevelName(int level);
// {"status", "checks": [{"name", "value", "threshold", "unit", "status"[, "error"]}]}: `health
// --json`.
std::string HealthJson(const std::vector<HealthCheck>& checks);

int Stats(const Options& o, int64_t window_seconds, std::ostream& out, std::ostream& err);

// "90s", "15m", "2h", "7d" or plain seconds -> seconds; -1 if unreadable.
int64_t ParseDuration(const std::string& text);

// `token hash`: the token is the first line of `in`; prints "NAME ROLE TENANT sha256:<hex>",
// checked as the services' loader checks it. kUsage for a bad name, role, tenant or token.
int TokenHash(const std::string& name, const std::string& role, const std::string& tenant,
              std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace convoy::ctl
