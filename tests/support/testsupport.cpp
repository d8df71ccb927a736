#include "testsupport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "convoy/crypto.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/topology.h"

namespace convoy::test {

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

namespace {
std::vector<std::string> SplitCommas(const std::string& list) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(list);
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}
}  // namespace

std::vector<std::string> AmqpBaseUrls() {
  std::vector<std::string> out;
  for (const auto& url :
       SplitCommas(Env("CONVOY_AMQP_URL", "amqp://guest:guest@127.0.0.1:21672/%2f"))) {
    // strip the vhost: amqp://user:pass@host:port
    auto scheme = url.find("://");
    auto slash = url.find('/', scheme + 3);
    out.push_back(slash == std::string::npos ? url : url.substr(0, slash));
  }
  return out;
}

std::string AmqpBaseUrl() { return AmqpBaseUrls().front(); }

std::string RabbitMgmtUrl() {
  return SplitCommas(Env("CONVOY_RABBIT_MGMT_URL", "http://127.0.0.1:21673")).front();
}

std::string PgDsn() {
  return Env("CONVOY_PG_DSN", "host=127.0.0.1 port=21432 user=postgres dbname=postgres");
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  std::ostringstream s;
  s << prefix << "_" << getpid() << "_" << counter++ << "_" << (rd() % 100000);
  return s.str();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string FixturePath(const std::string& relative) {
  return std::string(CONVOY_FIXTURES_DIR) + "/" + relative;
}
std::map<std::string, std::string> FixtureSignatures() {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadFile(FixturePath("webhooks/SIGNATURES.tsv")));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

std::vector<PywaRow> PywaIndex() {
  std::vector<PywaRow> rows;
  std::istringstream in(ReadFile(FixturePath("webhooks/pywa/INDEX.tsv")));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    PywaRow r;
    std::string types;
    std::getline(row, r.file, '\t');
    row >> r.messages >> r.statuses >> r.errors;
    row.ignore();
    std::getline(row, r.field, '\t');
    std::getline(row, types, '\t');
    std::getline(row, r.signature, '\t');
    rows.push_back(r);
  }
  return rows;
}

const SchemaRegistry& ShippedSchemas() {
  static SchemaRegistry* registry = [] {
    auto* r = new SchemaRegistry();
    Status s = r->LoadDir(SourcePath("proto-schemas"));
    if (!s.ok()) ADD_FAILURE() << "proto-schemas: " << s.ToString();
    return r;
  }();
  return *registry;
}

std::string SourcePath(const std::string& relative) {
  return std::string(CONVOY_SOURCE_DIR) + "/" + relative;
}
std::string BinaryPath(const std::string& relative) {
  return std::string(CONVOY_BINARY_DIR) + "/" + relative;
}

std::string MessageWebhook(const std::string& phone_number_id, const std::string& wa_id,
                           const std::string& name, const std::string& wamid, int64_t timestamp,
                           const std::string& message) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":")" +
         JsonEscape(phone_number_id) + R"("},"contacts":[{"profile":{"name":")" + JsonEscape(name) +
         R"("},"wa_id":")" + JsonEscape(wa_id) + R"("}],"messages":[{"from":")" +
         JsonEscape(wa_id) + R"(","id":")" + JsonEscape(wamid) + R"(","timestamp":")" +
         std::to_string(timestamp) + R"(",)" + message + R"(}]},"field":"messages"}]}]})";
}

std::string TextMessage(const std::string& body) {
  return R"("type":"text","text":{"body":")" + JsonEscape(body) + R"("})";
}

std::string ImageMessage(const std::string& media_id, const std::string& mime_type) {
  return R"("type":"image","image":{"mime_type":")" + JsonEscape(mime_type) + R"(","id":")" +
         JsonEscape(media_id) + R"("})";
}

std::string CaptionedImageMessage(const std::string& media_id, const std::string& caption) {
  return R"("type":"image","image":{"mime_type":"image/jpeg","id":")" + JsonEscape(media_id) +
         R"(","caption":")" + JsonEscape(caption) + R"("})";
}

std::string ButtonReplyMessage(const std::string& id, const std::string& title) {
  return R"("type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":")" +
         JsonEscape(id) + R"(","title":")" + JsonEscape(title) + R"("}})";
}

std::string HistoryWebhook(const std::string& wa_id, const std::string& prefix, int messages,
                           int64_t timestamp) {
  std::string out =
      R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"history",)"
      R"("value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",)"
      R"("phone_number_id":")" +
      std::string(kDemoNumber) +
      R"("},"history":[{"metadata":{"phase":0,)"
      R"("chunk_order":1,"progress":100},"threads":[{"id":")" +
      JsonEscape(wa_id) + R"(","messages":[)";
  for (int i = 0; i < messages; ++i) {
    out += std::string(i ? "," : "") + R"({"from":")" + JsonEscape(wa_id) +
           R"(","id":"wamid.history-)" + JsonEscape(prefix) + "-" + std::to_string(i) +
           R"(","timestamp":")" + std::to_string(timestamp + i) +
           R"(","type":"text","text":{"body":"hi"},"history_context":{"status":"READ"}})";
  }
  return out + "]}]}]}}]}]}";
}

int CountOccurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); !what.empty() && at != std::string::npos;
       at = text.find(what, at + what.size()))
    ++n;
  return n;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string HttpGet(const std::string& url, int* status) {
  HttpClientRequest req;
  req.url = url;
  req.timeout = std::chrono::milliseconds(5000);
  auto r = HttpFetch(req);
  if (status) *status = r.ok() ? r->status : 0;
  return r.ok() ? r->body : "";
}

double MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::atof(line.c_str() + series.size() + 1);
  }
  return -1;
}

bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {
// The management API of the first node that answers (CONVOY_RABBIT_MGMT_URL may list a cluster's).
HttpResponse Mgmt(const std::string& method, const std::string& path,
                  const std::string& body = "") {
  HttpResponse last{599, "", "no management URL", {}};
  for (const auto& base : SplitCommas(Env("CONVOY_RABBIT_MGMT_URL", "http://127.0.0.1:21673"))) {
    HttpClientRequest req;
    req.method = method;
    req.url = base + path;
    req.headers["Authorization"] = "Basic Z3Vlc3Q6Z3Vlc3Q=";  // guest:guest
    req.body = body;
    auto r = HttpFetch(req);
    if (r.ok()) return *r;
    last = HttpResponse{599, "", r.status().ToString(), {}};
  }
  return last;
}
}  // namespace

TestVhost::TestVhost(const std::string& prefix) : name_(UniqueName(prefix)) {
  auto r = Mgmt("PUT", "/api/vhosts/" + name_, "{}");
  if (r.status / 100 != 2) throw std::runtime_error("cannot create vhost: " + r.body);
  r = Mgmt("PUT", "/api/permissions/" + name_ + "/guest",
           R"({"configure":".*","write":".*","read":".*"})");
  if (r.status / 100 != 2) throw std::runtime_error("cannot grant vhost: " + r.body);
}

TestVhost::~TestVhost() {
  Mgmt("DELETE", "/api/vhosts/" + name_);
  for (const auto& user : users_) Mgmt("DELETE", "/api/users/" + user);
}

// One URL per broker node (a cluster's, comma-separated, as --amqp_url takes them).
std::string TestVhost::url() const {
  std::string out;
  for (const auto& base : AmqpBaseUrls()) out += (out.empty() ? "" : ",") + base + "/" + name_;
  return out;
}

std::string TestVhost::PartUrl(const std::string& part) {
  const BrokerGrant* grant = FindBrokerGrant(part);
  if (!grant) throw std::runtime_error("no broker grant for part " + part);
  const std::string user = name_ + "." + part;
  const std::string password = HexEncode(HmacSha256(user, UniqueName("pw")));
  if (std::find(users_.begin(), users_.end(), user) == users_.end()) {
    auto r = Mgmt("PUT", "/api/users/" + user, R"({"password":")" + password + R"(","tags":""})");
    if (r.status / 100 != 2) throw std::runtime_error("cannot create user " + user + ": " + r.body);
    users_.push_back(user);
    r = Mgmt("PUT", "/api/permissions/" + name_ + "/" + user,
             R"({"configure":")" + JsonEscape(grant->configure) + R"(","write":")" +
                 JsonEscape(grant->write) + R"(","read":")" + JsonEscape(grant->read) + R"("})");
    if (r.status / 100 != 2) throw std::runtime_error("cannot grant " + user + ": " + r.body);
    passwords_[user] = password;
  }
  std::string out;
  for (const auto& base : AmqpBaseUrls()) {
    const auto scheme = base.find("://") + 3;
    const auto at = base.find('@', scheme);
    out += (out.empty() ? "" : ",") + base.substr(0, scheme) + user + ":" + passwords_[user] +
           base.substr(at) + "/" + name_;
  }
  return out;
}

std::string TestVhost::QueueLeader(const std::string& queue) const {
  auto r = Mgmt("GET", "/api/queues/" + name_ + "/" + queue);
  if (r.status != 200) return "";
  const std::string key = "\"leader\":\"";
  const auto at = r.body.find(key);
  if (at == std::string::npos) return "";
  const auto from = at + key.size();
  return r.body.substr(from, r.body.find('"', from) - from);
}

int ClusterNodeNumber(const std::string& node) {
  const auto dash = node.find('-');
  if (dash == std::string::npos) return 0;
  const int port = std::atoi(node.c_str() + dash + 1),
            first = std::atoi(Env("CONVOY_AMQP_PORT", "21672").c_str());
  const int n = (port - first) / 100 + 1;
  return (port - first) % 100 == 0 && n >= 1 && n <= 3 ? n : 0;
}

TestDatabase::TestDatabase(const std::string& prefix) : name_(UniqueName(prefix)) {
  auto admin = PgConnection::Connect(PgDsn());
  if (!admin.ok()) throw std::runtime_error(admin.status().ToString());
  auto r = (*admin)->Exec("CREATE DATABASE " + name_);  // name_ is ours: letters, digits, _
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
}

TestDatabase::~TestDatabase() {
  auto admin = PgConnection::Connect(PgDsn());
  // Best effort: a destructor has no one to tell, and a database left over harms no other test.
  if (admin.ok()) (void)(*admin)->Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

std::string TestDatabase::RoleDsn(const std::string& role) const {
  std::string dsn = this->dsn();
  const auto pos = dsn.find("user=");
  if (pos != std::string::npos) {
    const auto end = dsn.find(' ', pos);
    dsn.erase(pos, end == std::string::npos ? std::string::npos : end - pos);
  }
  return dsn + " user=" + role;
}

std::string TestDatabase::dsn() const {
  std::string base = PgDsn();
  auto pos = base.find("dbname=");
  if (pos != std::string::npos) {
    auto end = base.find(' ', pos);
    base.erase(pos, end == std::string::npos ? std::string::npos : end - pos);
  }
  return base + " dbname=" + name_;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && running()) {
    Signal(SIGKILL);
    Wait();
  }
}

bool ChildProcess::Start(const std::vector<std::string>& argv, const std::string& log_path,
                         const std::map<std::string, std::string>& env) {
  log_path_ = log_path;
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    // If the test process dies without cleaning up (a crash, a timeout), its services die too.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string ChildProcess::Log() const { return ReadFile(log_path_); }

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.insert(n);
    }
    ::closedir(d);
  }
  return out;
}

const std::vector<std::string>& FixtureNumbers() {
  static const auto* numbers =
      new std::vector<std::string>{"106540352242923", "1122334455667", "590968830767958"};
  return *numbers;
}

void RegisterNumber(PgConnection& db, const std::string& phone_number_id, const std::string& tenant,
                    const std::string& status) {
  auto r = db.Exec(
      "INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
      "graph_token_ref, status, "
      "source) VALUES ($1, $2, '102290129340398', '15550783881', 'env:CONVOY_GRAPH_TOKEN', $3, "
      "'test') "
      "ON CONFLICT (phone_number_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()",
      {phone_number_id, tenant, status});
  if (!r.ok())
    ADD_FAILURE() << "registering number " << phone_number_id << ": " << r.status().ToString();
}

void RefuseUpdates(PgConnection& owner, const std::string& table, const std::string& when,
                   int times) {
  for (const std::string& sql :
       {std::string("CREATE SEQUENCE refused_records"),
        std::string("CREATE TABLE fault_switch (refusing boolean NOT NULL)"),
        std::string("INSERT INTO fault_switch VALUES (true)"),
        // Security definer: a service's role, whose update fires it, may not read these.
        "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS "
        "$$ BEGIN IF " +
            (times > 0 ? kRefusedSoFar + " < " + std::to_string(times)
                       : std::string("(SELECT refusing FROM fault_switch)")) +
            " THEN PERFORM nextval('refused_records'); "
            "RAISE EXCEPTION 'injected: " +
            table + " refuses the update'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_update BEFORE UPDATE ON " + table + " FOR EACH ROW WHEN (" + when +
            ") EXECUTE FUNCTION refuse_update()"}) {
    auto r = owner.Exec(sql);
    if (!r.ok()) ADD_FAILURE() << r.status().ToString() << "\n" << sql;
  }
}

}  // namespace convoy::test
