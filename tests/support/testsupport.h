#pragma once
// Hermetic test fixtures: a RabbitMQ vhost and a PostgreSQL database of their own per test,
// child processes with captured logs, and waiting on conditions with deadlines.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace convoy {
class SchemaRegistry;
class PgConnection;
}  // namespace convoy

namespace convoy::test {

std::string Env(const char* name, const std::string& fallback =
                                      "");  // the variable, or `fallback` when unset or empty
std::string AmqpBaseUrl();  // CONVOY_AMQP_URL without the vhost (the first node's, of a list)
std::vector<std::string> AmqpBaseUrls();  // each node's of CONVOY_AMQP_URL (comma-separated)
std::string RabbitMgmtUrl();              // CONVOY_RABBIT_MGMT_URL (the first, of a list)
// Node N (1..3) of a cluster started by scripts/infra.sh (node 1 on CONVOY_AMQP_PORT, the others
// 100 and 200 above) from its name ("convoy-21772@localhost"); 0 when it is not one of them.
int ClusterNodeNumber(const std::string& node);
std::string PgDsn();  // CONVOY_PG_DSN (the admin database)
std::string UniqueName(const std::string& prefix);
std::string ReadFile(const std::string& path);
std::string FixturePath(const std::string& relative);  // under tests/fixtures/meta
// webhooks/SIGNATURES.tsv: file name -> its X-Hub-Signature-256 with secret test-app-secret.
std::map<std::string, std::string> FixtureSignatures();
// webhooks/pywa/INDEX.tsv, one row per file.
struct PywaRow {
  std::string file, field, signature;
  int messages = 0, statuses = 0, errors = 0;
};
std::vector<PywaRow> PywaIndex();
std::string SourcePath(const std::string& relative);  // under the project root
// proto-schemas/, loaded once (a test fails if they do not load).
const SchemaRegistry& ShippedSchemas();
std::string BinaryPath(const std::string& relative);  // under the build folder

// A webhook POST body as Meta sends it, holding one message from wa_id. `message` is the
// message object's type-specific members, e.g. "type":"text","text":{"body":"hi"}.
std::string MessageWebhook(const std::string& phone_number_id, const std::string& wa_id,
                           const std::string& name, const std::string& wamid, int64_t timestamp,
                           const std::string& message);
std::string TextMessage(const std::string& body);
std::string ImageMessage(const std::string& media_id, const std::string& mime_type = "image/jpeg");
std::string CaptionedImageMessage(const std::string& media_id, const std::string& caption);
std::string ButtonReplyMessage(const std::string& id, const std::string& title);
// A `history` webhook (coexistence backfill) of one thread: `messages` texts from wa_id to the demo
// number's business, ids "wamid.history-<prefix>-<i>", one second apart from `timestamp`.
std::string HistoryWebhook(const std::string& wa_id, const std::string& prefix, int messages,
                           int64_t timestamp);

// The demo number: deploy/numbers/106540352242922.json (tenant "demo"), the fixtures' and
// MessageWebhook's usual metadata.phone_number_id.
inline constexpr const char* kDemoNumber = "106540352242922";
// The other business numbers the fixtures name (batch_mixed.json, status_delivered.json, the pywa
// corpus), registered by the test stack under tenant "fixtures".
const std::vector<std::string>& FixtureNumbers();
// Puts a number in the numbers registry (0017_numbers.sql) as the database owner would: an
// update for a number that is not there never reaches a flow. ADD_FAILUREs on an error.
void RegisterNumber(PgConnection& db, const std::string& phone_number_id,
                    const std::string& tenant = "test", const std::string& status = "active");

// A fault for a record that must not be lost: a trigger on `table` that refuses the updates
// matching `when` (the trigger's WHEN condition, on OLD and NEW) as the database does while it
// restarts — the first `times` of them, or every one while `UPDATE fault_switch SET refusing =
// false` has not run (times = 0). Each refusal counts in the sequence refused_records (which
// outlives the rolled-back statement): RefusedSoFar(). Runs as the table's owner; the trigger
// fires for whichever role updates. ADD_FAILUREs on an error.
void RefuseUpdates(PgConnection& owner, const std::string& table, const std::string& when,
                   int times);
inline const std::string kRefusedSoFar =
    "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM refused_records)";

// How many times `what` appears in `text` (not overlapping).
int CountOccurrences(const std::string& text, const std::string& what);

// A TCP port free on loopback right now.
int FreePort();
// GET an URL; the body, or "" on any failure. *status gets the HTTP status (0 if none).
std::string HttpGet(const std::string& url, int* status = nullptr);
// The value of one Prometheus sample line "name{labels} value" in a /metrics text, or -1.
double MetricValue(const std::string& metrics_text, const std::string& series);

// The wall clock, as WhatsApp timestamps (seconds) and as send times (milliseconds) count it.
int64_t NowSeconds();
int64_t NowMillis();
// The names in a folder (hidden ones included, without . and ..); empty if it cannot be read.
std::set<std::string> ListDir(const std::string& dir);

// Polls cond every few milliseconds until it holds or the deadline passes.
bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds deadline);

// A vhost created through the management API and deleted at the end of the test.
class TestVhost {
 public:
  explicit TestVhost(const std::string& prefix);
  ~TestVhost();
  const std::string& name() const { return name_; }
  std::string url() const;  // amqp URL for this vhost (guest: may do anything)
  // The URL of a user of this vhost's own for one part of convoy (topology.h BrokerGrants:
  // "ingress", "conversation", ...), with exactly that part's permissions; removed at the end.
  std::string PartUrl(const std::string& part);
  // The broker node leading quorum queue `queue` of this vhost ("convoy-21672@localhost"), from
  // the management API; "" when it does not say.
  std::string QueueLeader(const std::string& queue) const;

 private:
  std::string name_;
  std::vector<std::string> users_;
  std::map<std::string, std::string> passwords_;
};

// A database created for the test and dropped at the end.
class TestDatabase {
 public:
  explicit TestDatabase(const std::string& prefix);
  ~TestDatabase();
  std::string dsn() const;  // as the owner (postgres)
  // As one of the services' roles (deploy/postgres/0014_service_roles.sql: convoy_conversation,
  // ...), which exist once the migrations ran; local PostgreSQL trusts them without a password.
  std::string RoleDsn(const std::string& role) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// A child process with stdout+stderr in a log file; killed (SIGKILL) if still running at the end.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& env = {});
  void Signal(int sig);
  int Wait();  // exit status (or 128+signal)
  bool running();
  pid_t pid() const { return pid_; }
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

}  // namespace convoy::test
