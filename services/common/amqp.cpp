// The only file that includes rabbitmq-c. Every rabbitmq-c return value is turned into a
// Status by CheckReply()/CheckRc() below.
#include "convoy/amqp.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "convoy/amqp_admin.h"
#include "convoy/log.h"
#include "convoy/topology.h"

namespace convoy {

const char* PublishOutcomeName(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::kConfirmed:
      return "confirmed";
    case PublishOutcome::kNacked:
      return "nacked";
    case PublishOutcome::kReturned:
      return "returned";
    case PublishOutcome::kUnavailable:
      return "unavailable";
    case PublishOutcome::kOverloaded:
      return "overloaded";
    case PublishOutcome::kRejected:
      return "rejected";
  }
  return "unknown";
}

Status PublishOutcomeStatus(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::kConfirmed:
      return Status::Ok();
    case PublishOutcome::kUnavailable:
    case PublishOutcome::kOverloaded:
    case PublishOutcome::kNacked:
      return Status(Code::kUnavailable, std::string("publish ") + PublishOutcomeName(outcome));
    case PublishOutcome::kReturned:
    case PublishOutcome::kRejected:
      return Status(Code::kRejected, std::string("publish ") + PublishOutcomeName(outcome));
  }
  return Status(Code::kInternal, "unknown publish outcome");
}

Disposition DispositionFor(const Status& status) {
  if (status.ok()) return Disposition::Ack();
  if (IsTransient(status.code())) return Disposition::Retry(status.ToString());
  return Disposition::DeadLetter(status.ToString());
}

std::string Delivery::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string RedactAmqpUrl(const std::string& url) {
  if (url.find(',') != std::string::npos) {
    std::string out;
    for (const auto& one : AmqpUrls(url)) out += (out.empty() ? "" : ",") + RedactAmqpUrl(one);
    return out;
  }
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t start = scheme + 3;
  size_t end = url.find('/', start);
  if (end == std::string::npos) end = url.size();
  size_t at = url.rfind('@', end);
  if (at == std::string::npos || at < start) return url;
  size_t colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

namespace {

bool IsTlsUrl(const std::string& url) { return url.rfind("amqps://", 0) == 0; }

Status CheckReadable(const std::string& path, const char* what, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in || in.peek() == std::ifstream::traits_type::eof()) {
    int err = errno;
    return Status(Code::kInvalidArgument,
                  std::string("cannot read the ") + what + " " + path + " (" + flag +
                      "): " + (in ? "the file is empty" : std::strerror(err)));
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> AmqpUrls(const std::string& list) {
  std::vector<std::string> urls;
  size_t at = 0;
  while (at <= list.size()) {
    size_t end = list.find(',', at);
    if (end == std::string::npos) end = list.size();
    std::string one = list.substr(at, end - at);
    const size_t b = one.find_first_not_of(" \t"), e = one.find_last_not_of(" \t");
    if (b != std::string::npos) urls.push_back(one.substr(b, e - b + 1));
    at = end + 1;
  }
  return urls;
}

Status ValidateAmqpOptions(const AmqpOptions& o) {
  const std::vector<std::string> urls = AmqpUrls(o.url);
  if (urls.empty())
    return Status(Code::kInvalidArgument, "no broker URL (--amqp_url, CONVOY_AMQP_URL)");
  for (const auto& u : urls) {
    if (u.rfind("amqp://", 0) != 0 && u.rfind("amqps://", 0) != 0) {
      return Status(Code::kInvalidArgument,
                    "broker URL " + RedactAmqpUrl(u) + " does not start with amqp:// or amqps://");
    }
    // One scheme for every node: a list that mixes them would fall back to plain text when the
    // TLS nodes are down.
    if (IsTlsUrl(u) != IsTlsUrl(urls.front())) {
      return Status(Code::kInvalidArgument,
                    "the broker URLs mix amqp:// and amqps://: every node is reached the same way");
    }
  }
  bool any_file = !o.ca_file.empty() || !o.cert_file.empty() || !o.key_file.empty();
  if (!IsTlsUrl(urls.front()) && any_file) {
    return Status(
        Code::kInvalidArgument,
        "TLS files are set (--amqp_ca_file/--amqp_cert_file/--amqp_key_file) but the broker URL " +
            RedactAmqpUrl(o.url) + " is plain: use amqps:// to connect with TLS");
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status(Code::kInvalidArgument,
                  "a client certificate needs both --amqp_cert_file and --amqp_key_file");
  }
  if (!o.ca_file.empty()) {
    Status s = CheckReadable(o.ca_file, "CA file", "--amqp_ca_file");
    if (!s.ok()) return s;
  }
  if (!o.cert_file.empty()) {
    Status s = CheckReadable(o.cert_file, "client certificate", "--amqp_cert_file");
    if (!s.ok()) return s;
    s = CheckReadable(o.key_file, "client key", "--amqp_key_file");
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

namespace {

constexpr amqp_channel_t kChannel = 1;
constexpr const char* kPublishTagHeader = "x-convoy-publish-tag";

std::string BytesToString(amqp_bytes_t b) {
  return b.len ? std::string(static_cast<const char*>(b.bytes), b.len) : std::string();
}

// What an operator does about a channel the broker closed on a missing object or a permission.
std::string BrokerRefusalHint(int reply_code) {
  if (reply_code == AMQP_NOT_FOUND) {
    return " (convoy's topology is not declared on this vhost: run `convoy-topology --upgrade` "
           "first)";
  }
  if (reply_code == AMQP_ACCESS_REFUSED) {
    return " (this part's broker user may not do that: `convoy-topology --grants` lists what each "
           "part's user needs)";
  }
  return "";
}

// The one place an amqp_rpc_reply_t becomes a Status.
Status CheckReply(amqp_rpc_reply_t r, const std::string& what) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return Status::Ok();
    case AMQP_RESPONSE_NONE:
      return Status(Code::kInternal, what + ": missing RPC reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return Status(r.library_error == AMQP_STATUS_TIMEOUT ? Code::kTimeout : Code::kUnavailable,
                    what + ": " + amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return Status(Code::kUnavailable,
                      what + ": connection closed by broker: " + std::to_string(m->reply_code) +
                          " " + BytesToString(m->reply_text));
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return Status(Code::kRejected,
                      what + ": channel closed by broker: " + std::to_string(m->reply_code) + " " +
                          BytesToString(m->reply_text) + BrokerRefusalHint(m->reply_code));
      }
      return Status(Code::kUnavailable, what + ": unexpected server method");
  }
  return Status(Code::kInternal, what + ": unknown reply type");
}

// The one place a rabbitmq-c status code becomes a Status.
Status CheckRc(int rc, const std::string& what) {
  if (rc >= 0) return Status::Ok();
  return Status(rc == AMQP_STATUS_TIMEOUT ? Code::kTimeout : Code::kUnavailable,
                what + ": " + amqp_error_string2(rc));
}

// Builds an amqp_table_t whose entries point into strings owned by the caller.
class Table {
 public:
  void Add(const std::string& key, const std::string& value) {
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key.c_str());
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_bytes_t{value.size(), const_cast<char*>(value.data())};
    entries_.push_back(e);
  }
  void Add(const std::string& key, int64_t value) {
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key.c_str());
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = value;
    entries_.push_back(e);
  }
  void AddBool(const std::string& key, bool value) {
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key.c_str());
    e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e.value.value.boolean = value ? 1 : 0;
    entries_.push_back(e);
  }
  amqp_table_t table() {
    return amqp_table_t{static_cast<int>(entries_.size()),
                        entries_.empty() ? nullptr : entries_.data()};
  }

 private:
  std::vector<amqp_table_entry_t> entries_;
};

// The declarations of topology.h's specs (their replies are read by the caller).
void SendExchangeDeclare(amqp_connection_state_t st, const ExchangeSpec& ex) {
  Table args;
  for (const auto& [k, v] : ex.string_args) args.Add(k, v);
  amqp_exchange_declare(st, kChannel, amqp_cstring_bytes(ex.name.c_str()),
                        amqp_cstring_bytes(ex.type.c_str()), 0, 1, 0, 0, args.table());
}

void SendQueueDeclare(amqp_connection_state_t st, const QueueSpec& q) {
  Table args;
  for (const auto& [k, v] : q.string_args) args.Add(k, v);
  for (const auto& [k, v] : q.int_args) args.Add(k, v);
  for (const auto& [k, v] : q.bool_args) args.AddBool(k, v);
  amqp_queue_declare(st, kChannel, amqp_cstring_bytes(q.name.c_str()), 0, 1, 0, 0, args.table());
}

void SendBind(amqp_connection_state_t st, const BindingSpec& b, bool unbind) {
  amqp_bytes_t dest = amqp_cstring_bytes(b.queue.c_str()),
               source = amqp_cstring_bytes(b.exchange.c_str()),
               key = amqp_cstring_bytes(b.routing_key.c_str());
  if (b.to_exchange && unbind) {
    amqp_exchange_unbind(st, kChannel, dest, source, key, amqp_empty_table);
  } else if (b.to_exchange) {
    amqp_exchange_bind(st, kChannel, dest, source, key, amqp_empty_table);
  } else if (unbind) {
    amqp_queue_unbind(st, kChannel, dest, source, key, amqp_empty_table);
  } else {
    amqp_queue_bind(st, kChannel, dest, source, key, amqp_empty_table);
  }
}

// A channel of its own for probing: the broker closes a channel on a passive declare of a queue
// that does not exist, and channel 1 carries the connection's real work.
constexpr amqp_channel_t kProbeChannel = 2;

// How many partitions of a partitioned work queue exist on the broker: passive declares of
// "<queue>.0", "<queue>.1", ... until the first that does not exist (at most
// kMaxConversationPartitions are looked for).
Result<int> CountPartitionsOn(amqp_connection_state_t st, const std::string& work_queue) {
  amqp_channel_open(st, kProbeChannel);
  Status s = CheckReply(amqp_get_rpc_reply(st), "channel.open (partition discovery)");
  if (!s.ok()) return s;
  for (int i = 0; i < kMaxConversationPartitions; ++i) {
    const std::string name = PartitionName(work_queue, i);
    amqp_queue_declare(st, kProbeChannel, amqp_cstring_bytes(name.c_str()), /*passive=*/1, 0, 0, 0,
                       amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) continue;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const bool missing =
          static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code == AMQP_NOT_FOUND;
      amqp_channel_close_ok_t ok{};
      s = CheckRc(amqp_send_method(st, kProbeChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                  "channel.close-ok");
      if (!s.ok()) return s;
      if (missing) return i;
    }
    return CheckReply(r, "queue.declare passive " + name);
  }
  s = CheckReply(amqp_channel_close(st, kProbeChannel, AMQP_REPLY_SUCCESS),
                 "channel.close (partition discovery)");
  if (!s.ok()) return s;
  return kMaxConversationPartitions;
}

Result<std::vector<std::string>> DiscoverQueuesOn(amqp_connection_state_t st,
                                                  const std::string& work_queue) {
  if (!FindPartitioned(work_queue)) return std::vector<std::string>{work_queue};
  auto n = CountPartitionsOn(st, work_queue);
  if (!n.ok()) return n.status();
  if (*n == 0) {
    return Status(Code::kNotFound,
                  PartitionName(work_queue, 0) +
                      " does not exist: declare the topology (`convoy-topology --upgrade`) first");
  }
  return PartitionNames(work_queue, *n);
}

bool FieldToString(const amqp_field_value_t& v, std::string* out) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      *out = BytesToString(v.value.bytes);
      return true;
    case AMQP_FIELD_KIND_I8:
      *out = std::to_string(v.value.i8);
      return true;
    case AMQP_FIELD_KIND_U8:
      *out = std::to_string(v.value.u8);
      return true;
    case AMQP_FIELD_KIND_I16:
      *out = std::to_string(v.value.i16);
      return true;
    case AMQP_FIELD_KIND_U16:
      *out = std::to_string(v.value.u16);
      return true;
    case AMQP_FIELD_KIND_I32:
      *out = std::to_string(v.value.i32);
      return true;
    case AMQP_FIELD_KIND_U32:
      *out = std::to_string(v.value.u32);
      return true;
    case AMQP_FIELD_KIND_I64:
      *out = std::to_string(v.value.i64);
      return true;
    case AMQP_FIELD_KIND_U64:
      *out = std::to_string(v.value.u64);
      return true;
    default:
      return false;  // arrays (x-death), tables, floats: not ours
  }
}

std::map<std::string, std::string> ReadHeaders(const amqp_basic_properties_t& props) {
  std::map<std::string, std::string> out;
  if (!(props._flags & AMQP_BASIC_HEADERS_FLAG)) return out;
  for (int i = 0; i < props.headers.num_entries; ++i) {
    std::string value;
    if (FieldToString(props.headers.entries[i].value, &value)) {
      out[BytesToString(props.headers.entries[i].key)] = value;
    }
  }
  return out;
}

// The first reason the broker's certificate failed verification during this thread's handshake
// (a handshake runs on the connecting thread, inside amqp_socket_open_noblock).
thread_local char t_verify_error[256];

int RecordVerifyError(int ok, X509_STORE_CTX* store) {
  if (!ok && t_verify_error[0] == '\0') {
    char subject[160] = "?";
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    }
    std::snprintf(t_verify_error, sizeof(t_verify_error), "%s (certificate %s, depth %d)",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)), subject,
                  X509_STORE_CTX_get_error_depth(store));
  }
  return ok;
}

// OpenSSL's queued errors as one line (and the queue emptied).
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

bool IsIpAddress(const char* host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

// A TLS socket that verifies the broker: the chain against the CA file (or the system's trust
// store), the host name against the certificate, TLS 1.2 or later. A certificate that does not
// verify fails the handshake itself (SSL_VERIFY_PEER), before any credential is sent; rabbitmq-c
// checks the chain and the name again after the handshake.
Result<amqp_socket_t*> NewTlsSocket(amqp_connection_state_t state, const AmqpOptions& o,
                                    const char* host) {
  amqp_socket_t* socket = amqp_ssl_socket_new(state);
  if (!socket) return Status(Code::kInternal, "amqp_ssl_socket_new failed");
  amqp_ssl_socket_set_verify_peer(socket, 1);
  amqp_ssl_socket_set_verify_hostname(socket, 1);
  Status s = CheckRc(amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST),
                     "TLS versions");
  if (!s.ok()) return s;
  auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  ERR_clear_error();
  if (o.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return Status(Code::kInvalidArgument,
                    "cannot load the system's trust store: " + OpenSslErrors());
    }
  } else if (amqp_ssl_socket_set_cacert(socket, o.ca_file.c_str()) != AMQP_STATUS_OK) {
    return Status(Code::kInvalidArgument,
                  "cannot load the CA file " + o.ca_file + " (--amqp_ca_file): " + OpenSslErrors());
  }
  if (!o.cert_file.empty() &&
      amqp_ssl_socket_set_key(socket, o.cert_file.c_str(), o.key_file.c_str()) != AMQP_STATUS_OK) {
    return Status(Code::kInvalidArgument, "cannot load the client certificate " + o.cert_file +
                                              " with key " + o.key_file + ": " + OpenSslErrors());
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int named = IsIpAddress(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                                : X509_VERIFY_PARAM_set1_host(param, host, 0);
  if (named != 1)
    return Status(Code::kInternal, "cannot set the TLS peer name: " + OpenSslErrors());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, RecordVerifyError);
  return socket;
}

// One broker connection with channel 1 open.
class Conn {
 public:
  ~Conn() { Close(/*graceful=*/true); }

  // Connects to the first node of the URL list that answers, starting with the one that answered
  // last (a process's clients share one list): a node that is down or hung (no answer within
  // connect_timeout) passes the turn to the next. The error names every node tried.
  Status Open(const AmqpOptions& options) {
    Status s = ValidateAmqpOptions(options);
    if (!s.ok()) return s;
    const std::vector<std::string> urls = AmqpUrls(options.url);
    static std::atomic<size_t> preferred{0};
    const size_t first = preferred.load() % urls.size();
    std::string tried;
    for (size_t i = 0; i < urls.size(); ++i) {
      const size_t at = (first + i) % urls.size();
      s = OpenOne(options, urls[at]);
      if (s.ok()) {
        preferred = at;
        return s;
      }
      Close(/*graceful=*/false);
      logged_in_ = false;
      // A broker that refused (a declaration, a login) refuses alike on every node of its cluster.
      if (urls.size() == 1 || s.code() == Code::kInvalidArgument || s.code() == Code::kRejected)
        return s;
      LOG_EVERY_N(WARNING, 20) << "event=amqp_node_unreachable node=" << RedactAmqpUrl(urls[at])
                               << " error=\"" << s.message() << "\" (logged every 20th)";
      tried += std::string(tried.empty() ? "" : "; ") + s.message();
    }
    return Status(s.code(),
                  "no broker node of " + std::to_string(urls.size()) + " answered: " + tried);
  }

  Status OpenOne(const AmqpOptions& options, const std::string& one_url) {
    Status s;
    std::vector<char> url(one_url.begin(), one_url.end());
    url.push_back('\0');
    amqp_connection_info info;
    amqp_default_connection_info(&info);
    if (amqp_parse_url(url.data(), &info) != AMQP_STATUS_OK) {
      return Status(Code::kInvalidArgument, "malformed AMQP URL " + RedactAmqpUrl(one_url));
    }
    // amqp_parse_url sets ssl from the scheme; the scheme decides, never a fallback.
    const bool tls = info.ssl != 0;
    if (tls != IsTlsUrl(one_url))
      return Status(Code::kInternal, "AMQP URL scheme and TLS disagree");
    state_ = amqp_new_connection();
    amqp_socket_t* socket = nullptr;
    if (tls) {
      auto made = NewTlsSocket(state_, options, info.host);
      if (!made.ok()) return made.status();
      socket = *made;
    } else {
      socket = amqp_tcp_socket_new(state_);
      if (!socket) return Status(Code::kInternal, "amqp_tcp_socket_new failed");
    }
    timeval tv{options.connect_timeout.count() / 1000,
               (options.connect_timeout.count() % 1000) * 1000};
    amqp_set_handshake_timeout(state_, &tv);
    amqp_set_rpc_timeout(state_, &tv);
    t_verify_error[0] = '\0';
    const std::string where =
        std::string(tls ? "amqps://" : "amqp://") + info.host + ":" + std::to_string(info.port);
    int rc = amqp_socket_open_noblock(socket, info.host, info.port, &tv);
    s = CheckRc(rc, "connect " + where);
    if (!s.ok() && tls) {
      std::string detail;
      if (t_verify_error[0] != '\0')
        detail = ": the broker's certificate did not verify: " + std::string(t_verify_error);
      if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED && IsIpAddress(info.host)) {
        detail =
            ": rabbitmq-c matches the certificate against DNS names only; put the broker's DNS "
            "name in the URL";
      }
      return Status(s.code(), s.message() + detail);
    }
    if (!s.ok()) return s;
    Table props;
    std::string name_key = "connection_name";
    props.Add(name_key, options.name);
    amqp_table_t client_props = props.table();
    const char* user = options.username.empty() ? info.user : options.username.c_str();
    const char* password = options.password.empty() ? info.password : options.password.c_str();
    s = CheckReply(
        amqp_login_with_properties(state_, info.vhost, 0, 131072, options.heartbeat_seconds,
                                   &client_props, AMQP_SASL_METHOD_PLAIN, user, password),
        "login to vhost \"" + std::string(info.vhost) + "\"");
    if (!s.ok()) {
      // "amqp://host:5672/" selects the empty vhost (the URI spec), not RabbitMQ's default "/".
      if (std::string(info.vhost).empty()) {
        return Status(
            s.code(),
            s.message() +
                " (the URL's path is empty, which names the vhost \"\"; "
                "RabbitMQ's default vhost \"/\" is written %2f: amqp://user:pass@host:5672/%2f)");
      }
      return s;
    }
    vhost_ = info.vhost;
    logged_in_ = true;
    amqp_channel_open(state_, kChannel);
    s = CheckReply(amqp_get_rpc_reply(state_), "channel.open");
    if (!s.ok()) return s;
    // Declarations are RPCs: generous timeout, then back to the short one.
    timeval long_tv{30, 0};
    amqp_set_rpc_timeout(state_, &long_tv);
    if (options.declare_topology) {
      s = DeclareTopology(ConvoyTopology());
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status DeclareTopology(const Topology& t) {
    for (const auto& ex : t.exchanges) {
      SendExchangeDeclare(state_, ex);
      Status s = CheckReply(amqp_get_rpc_reply(state_), "exchange.declare " + ex.name);
      if (!s.ok()) return s;
    }
    for (const auto& q : t.queues) {
      SendQueueDeclare(state_, q);
      Status s = CheckReply(amqp_get_rpc_reply(state_), "queue.declare " + q.name);
      if (IsInequivalentArgs(s)) {
        return Status(s.code(),
                      s.message() +
                          " -- declared by an older convoy: run `convoy-topology --upgrade` "
                          "with conversation, media and outbound stopped (README: Upgrading)");
      }
      if (!s.ok()) return s;
    }
    for (const auto& b : t.bindings) {
      SendBind(state_, b, /*unbind=*/false);
      Status s = CheckReply(amqp_get_rpc_reply(state_), "queue.bind " + b.queue);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  // graceful: say goodbye to the broker (only on a healthy connection).
  void Close(bool graceful) {
    if (!state_) return;
    if (graceful && logged_in_ && healthy_) {
      amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(state_);
    state_ = nullptr;
  }
  void MarkBroken() { healthy_ = false; }
  amqp_connection_state_t state() const { return state_; }
  const std::string& vhost() const { return vhost_; }

 private:
  amqp_connection_state_t state_ = nullptr;
  std::string vhost_;
  bool logged_in_ = false;
  bool healthy_ = true;
};

// Replies close-ok to a broker-initiated close so the broker can free the channel/connection.
void AnswerClose(amqp_connection_state_t state, const amqp_frame_t& frame) {
  if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_ok_t ok{};
    amqp_send_method(state, frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  } else if (frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
    amqp_connection_close_ok_t ok{};
    amqp_send_method(state, frame.channel, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  }
}

std::string CloseReason(const amqp_frame_t& frame) {
  if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
    return "channel.close " + std::to_string(m->reply_code) + " " + BytesToString(m->reply_text) +
           BrokerRefusalHint(m->reply_code);
  }
  auto* m = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
  return "connection.close " + std::to_string(m->reply_code) + " " + BytesToString(m->reply_text);
}

Delivery ToDelivery(const std::string& queue, const amqp_envelope_t& env) {
  Delivery d;
  d.queue = queue;
  d.exchange = BytesToString(env.exchange);
  d.routing_key = BytesToString(env.routing_key);
  d.body = BytesToString(env.message.body);
  d.redelivered = env.redelivered != 0;
  if (env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    d.message_id = BytesToString(env.message.properties.message_id);
  }
  d.headers = ReadHeaders(env.message.properties);
  d.headers.erase(kPublishTagHeader);
  auto it = d.headers.find(headers::kAttempt);
  if (it != d.headers.end()) d.attempt = std::atoi(it->second.c_str());
  return d;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Publisher

struct Publisher::Impl {
  struct Pending {
    AmqpMessage message;
    PublishCallback done;
    std::chrono::steady_clock::time_point sent_at{};  // when it went on the wire (the last time)
  };

  AmqpOptions options;
  size_t max_pending;
  int wake_fd = -1;
  std::thread thread;

  mutable std::mutex mu;
  mutable std::condition_variable connected_cv;
  std::deque<Pending> queue;  // guarded by mu
  bool stopping = false;      // guarded by mu
  bool started = false;
  std::atomic<bool> connected{false};
  std::atomic<size_t> outstanding{0};  // queued + unconfirmed

  // Publisher-thread only.
  std::unique_ptr<Conn> conn;
  uint64_t next_tag = 0;
  std::map<uint64_t, Pending> unconfirmed;
  std::chrono::steady_clock::time_point nacking_since{};  // the first nack since the last confirm
  std::set<uint64_t> returned;

  std::atomic<uint64_t> published{0}, confirmed{0}, nacked{0}, returned_count{0}, resent{0},
      reconnects{0}, max_in_flight{0};

  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd, &one, sizeof(one));
    (void)n;  // a full eventfd counter still wakes the reader
  }

  void Finish(Pending& p, PublishOutcome outcome) {
    outstanding.fetch_sub(1);
    switch (outcome) {
      case PublishOutcome::kConfirmed:
        confirmed.fetch_add(1);
        break;
      case PublishOutcome::kNacked:
        nacked.fetch_add(1);
        break;
      case PublishOutcome::kReturned:
        returned_count.fetch_add(1);
        break;
      default:
        break;
    }
    if (p.done) p.done(outcome);
  }

  void Run() {
    bool first = true;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) break;
      }
      if (!conn) {
        auto c = std::make_unique<Conn>();
        Status s = c->Open(options);
        if (!s.ok()) {
          LOG_EVERY_N(WARNING, 20)
              << LogCtx{"publisher"} << "event=amqp_connect_failed name=" << options.name
              << " error=" << s.ToString();
          WaitWake(static_cast<int>(options.reconnect_delay.count()));
          continue;
        }
        amqp_confirm_select(c->state(), kChannel);
        s = CheckReply(amqp_get_rpc_reply(c->state()), "confirm.select");
        if (!s.ok()) {
          LOG(WARNING) << LogCtx{"publisher"}
                       << "event=amqp_confirm_select_failed error=" << s.ToString();
          WaitWake(static_cast<int>(options.reconnect_delay.count()));
          continue;
        }
        conn = std::move(c);
        next_tag = 0;
        returned.clear();
        {
          std::lock_guard<std::mutex> lock(mu);
          connected.store(true);
        }
        connected_cv.notify_all();
        if (!first) reconnects.fetch_add(1);
        first = false;
        LOG(INFO) << LogCtx{"publisher"} << "event=amqp_connected name=" << options.name
                  << " vhost=" << conn->vhost();
      }
      std::deque<Pending> batch;
      {
        std::lock_guard<std::mutex> lock(mu);
        batch.swap(queue);
      }
      // Several publishes at once leave in as few TCP segments as the kernel can make of them.
      const bool cork = batch.size() > 1;
      if (cork) SetCork(true);
      while (!batch.empty()) {
        if (!Send(batch.front())) {
          // Put back what was not sent, ahead of anything queued since, then recover.
          std::lock_guard<std::mutex> lock(mu);
          while (!batch.empty()) {
            queue.push_front(std::move(batch.back()));
            batch.pop_back();
          }
          break;
        }
        batch.pop_front();
      }
      if (cork && conn) SetCork(false);
      if (!conn) {
        Lost("publish failed");
        continue;
      }
      Poll();
      // A channel whose oldest publish waits past the confirm timeout is stuck, not slow: seen in
      // tests/cluster on a channel opened while a quorum queue elected its new leader (a node
      // killed under load), which took publishes for minutes and confirmed none. A new connection
      // (and channel) finds the leader; everything unconfirmed goes again (consumers dedupe). The
      // same channel may instead nack every publish while the queue is healthy (seen there in every
      // run, and why: AmqpOptions::nack_timeout): nacks and no confirm for nack_timeout is as
      // stuck.
      const auto now = std::chrono::steady_clock::now();
      if (conn && !unconfirmed.empty() &&
          now - unconfirmed.begin()->second.sent_at > options.confirm_timeout) {
        Lost("no confirm for " + std::to_string(options.confirm_timeout.count()) +
             " ms: the channel is stuck");
      } else if (conn && nacking_since != std::chrono::steady_clock::time_point{} &&
                 now - nacking_since > options.nack_timeout) {
        Lost("every publish nacked for " + std::to_string(options.nack_timeout.count()) +
             " ms: the channel is stuck");
      }
    }
    // Shutting down: everything not confirmed fails.
    std::deque<Pending> rest;
    {
      std::lock_guard<std::mutex> lock(mu);
      rest.swap(queue);
    }
    for (auto& [tag, p] : unconfirmed) Finish(p, PublishOutcome::kUnavailable);
    unconfirmed.clear();
    for (auto& p : rest) Finish(p, PublishOutcome::kUnavailable);
    connected.store(false);
    conn.reset();
  }

  // Waits on the wake fd only (not connected).
  void WaitWake(int timeout_ms) {
    pollfd pfd{wake_fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) > 0) DrainWake();
  }

  void SetCork(bool on) {
    int v = on ? 1 : 0;
    ::setsockopt(amqp_get_sockfd(conn->state()), IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
  }

  void DrainWake() {
    uint64_t v;
    ssize_t n = ::read(wake_fd, &v, sizeof(v));
    (void)n;
  }

  bool Send(Pending& p) {
    amqp_connection_state_t st = conn->state();
    uint64_t tag = ++next_tag;
    Table headers;
    for (const auto& [k, v] : p.message.headers) headers.Add(k, v);
    for (const auto& [k, v] : p.message.int_headers) headers.Add(k, v);
    static const std::string kTagKey = kPublishTagHeader;
    headers.Add(kTagKey, static_cast<int64_t>(tag));
    amqp_basic_properties_t props{};
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes(p.message.content_type.c_str());
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.headers = headers.table();
    if (!p.message.message_id.empty()) {
      props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
      props.message_id = amqp_cstring_bytes(p.message.message_id.c_str());
    }
    amqp_bytes_t body{p.message.body.size(), const_cast<char*>(p.message.body.data())};
    int rc = amqp_basic_publish(st, kChannel, amqp_cstring_bytes(p.message.exchange.c_str()),
                                amqp_cstring_bytes(p.message.routing_key.c_str()),
                                /*mandatory=*/1, /*immediate=*/0, &props, body);
    if (rc != AMQP_STATUS_OK) {
      LOG(WARNING) << LogCtx{"publisher"}
                   << "event=amqp_publish_failed error=" << amqp_error_string2(rc);
      conn->MarkBroken();
      conn.reset();
      return false;
    }
    published.fetch_add(1);
    p.sent_at = std::chrono::steady_clock::now();
    unconfirmed.emplace(tag, std::move(p));
    uint64_t in_flight = unconfirmed.size();
    uint64_t prev = max_in_flight.load();
    while (in_flight > prev && !max_in_flight.compare_exchange_weak(prev, in_flight)) {
    }
    return true;
  }

  // Waits for broker frames or new work, whichever comes first, then handles what arrived.
  void Poll() {
    amqp_connection_state_t st = conn->state();
    bool readable = amqp_frames_enqueued(st) || amqp_data_in_buffer(st);
    if (!readable) {
      pollfd fds[2] = {{amqp_get_sockfd(st), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      // Awake often enough for the heartbeats and to see a confirm overdue (Run's watchdog).
      int timeout_ms = std::max(
          100, std::min(options.heartbeat_seconds * 250,
                        static_cast<int>(
                            std::min(options.confirm_timeout, options.nack_timeout).count() / 4)));
      if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) {
        Lost("poll failed");
        return;
      }
      if (fds[1].revents & POLLIN) DrainWake();
    }
    // Read every complete frame available; a zero timeout also sends a heartbeat when due.
    while (conn) {
      amqp_frame_t frame;
      timeval zero{0, 0};
      int rc = amqp_simple_wait_frame_noblock(st, &frame, &zero);
      if (rc == AMQP_STATUS_TIMEOUT) break;
      if (rc != AMQP_STATUS_OK) {
        Lost(amqp_error_string2(rc));
        return;
      }
      HandleFrame(frame);
    }
    // The frames just handled (confirms, returns) stay in the channel's pool until released, and
    // nothing else releases it: one confirm frame kept for every publish otherwise.
    if (conn) amqp_maybe_release_buffers(conn->state());
  }

  void HandleFrame(const amqp_frame_t& frame) {
    if (frame.frame_type != AMQP_FRAME_METHOD) return;
    amqp_connection_state_t st = conn->state();
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        Settle(m->delivery_tag, m->multiple, PublishOutcome::kConfirmed);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* m = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
        Settle(m->delivery_tag, m->multiple, PublishOutcome::kNacked);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // The returned content follows; its publish tag says which publish it was. The
        // broker's ack for that publish comes after the return.
        amqp_message_t msg;
        Status s =
            CheckReply(amqp_read_message(st, frame.channel, &msg, 0), "read returned message");
        if (!s.ok()) {
          Lost(s.ToString());
          return;
        }
        auto headers = ReadHeaders(msg.properties);
        auto it = headers.find(kPublishTagHeader);
        if (it != headers.end()) returned.insert(std::stoull(it->second));
        amqp_destroy_message(&msg);
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD: {
        std::string why = CloseReason(frame);
        AnswerClose(st, frame);
        if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
          // A channel error (e.g. a missing exchange) is about what was in flight: fail it
          // rather than resend it forever.
          for (auto& [tag, p] : unconfirmed) Finish(p, PublishOutcome::kRejected);
          unconfirmed.clear();
        }
        Lost(why);
        break;
      }
      default:
        break;
    }
  }

  void Settle(uint64_t tag, bool multiple, PublishOutcome outcome) {
    // Nacks with no confirm between them: since when (the watchdog in Run).
    if (outcome == PublishOutcome::kNacked) {
      if (nacking_since == std::chrono::steady_clock::time_point{})
        nacking_since = std::chrono::steady_clock::now();
    } else {
      nacking_since = {};
    }
    std::vector<std::pair<uint64_t, Pending>> done;
    if (multiple) {
      auto end = unconfirmed.upper_bound(tag);
      for (auto it = unconfirmed.begin(); it != end; ++it)
        done.emplace_back(it->first, std::move(it->second));
      unconfirmed.erase(unconfirmed.begin(), end);
    } else {
      auto it = unconfirmed.find(tag);
      if (it == unconfirmed.end()) return;
      done.emplace_back(it->first, std::move(it->second));
      unconfirmed.erase(it);
    }
    for (auto& [t, p] : done) {
      PublishOutcome o = outcome;
      if (returned.erase(t)) o = PublishOutcome::kReturned;
      Finish(p, o);
    }
  }

  // Connection lost: unconfirmed publishes go back to the front of the queue, in order, and
  // are sent again after reconnecting.
  void Lost(const std::string& why) {
    LOG(WARNING) << LogCtx{"publisher"} << "event=amqp_connection_lost name=" << options.name
                 << " unconfirmed=" << unconfirmed.size() << " why=" << why;
    connected.store(false);
    nacking_since = {};
    if (conn) {
      conn->MarkBroken();
      conn.reset();
    }
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = unconfirmed.rbegin(); it != unconfirmed.rend(); ++it) {
      queue.push_front(std::move(it->second));
      resent.fetch_add(1);
    }
    unconfirmed.clear();
    returned.clear();
  }
};

Publisher::Publisher(AmqpOptions options, size_t max_pending) : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->max_pending = max_pending;
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  PCHECK(impl_->wake_fd >= 0) << "eventfd";
}

Publisher::~Publisher() {
  Stop();
  ::close(impl_->wake_fd);
}

void Publisher::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void Publisher::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->started || impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->Wake();
  impl_->thread.join();
}

void Publisher::Publish(AmqpMessage message, PublishCallback done) {
  PublishOutcome refuse = PublishOutcome::kConfirmed;
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping || !impl_->connected.load()) {
      refuse = PublishOutcome::kUnavailable;
    } else if (impl_->outstanding.load() >= impl_->max_pending) {
      refuse = PublishOutcome::kOverloaded;
    } else {
      impl_->outstanding.fetch_add(1);
      was_empty = impl_->queue.empty();
      impl_->queue.push_back({std::move(message), std::move(done)});
    }
  }
  if (refuse != PublishOutcome::kConfirmed) {
    if (done) done(refuse);
    return;
  }
  // The publisher thread takes the whole queue each time round and polls only after sending it:
  // only the first publish into an empty queue has to wake it (one syscall per burst, not per
  // message).
  if (was_empty) impl_->Wake();
}

Status Publisher::PublishAndWait(AmqpMessage message, std::chrono::milliseconds timeout) {
  PublishBatch batch;
  Publish(std::move(message), batch.Add());
  return batch.Wait(std::chrono::steady_clock::now() + timeout);
}

bool Publisher::connected() const { return impl_->connected.load(); }

bool Publisher::WaitConnected(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->connected_cv.wait_for(lock, timeout, [&] { return impl_->connected.load(); });
}

PublisherStats Publisher::stats() const {
  PublisherStats s;
  s.published = impl_->published.load();
  s.confirmed = impl_->confirmed.load();
  s.nacked = impl_->nacked.load();
  s.returned = impl_->returned_count.load();
  s.resent = impl_->resent.load();
  s.reconnects = impl_->reconnects.load();
  s.max_in_flight = impl_->max_in_flight.load();
  return s;
}

// ---------------------------------------------------------------------------------------------
// PublishBatch

struct PublishBatch::State {
  std::mutex mu;
  std::condition_variable cv;
  size_t added = 0, confirmed = 0;
  bool failed = false;
  PublishOutcome failure = PublishOutcome::kConfirmed;
};

PublishBatch::PublishBatch() : state_(std::make_shared<State>()) {}

PublishCallback PublishBatch::Add() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->added;
  }
  return [state = state_](PublishOutcome outcome) {
    std::lock_guard<std::mutex> lock(state->mu);
    if (outcome == PublishOutcome::kConfirmed) {
      ++state->confirmed;
    } else if (!state->failed) {
      state->failed = true;
      state->failure = outcome;
    }
    state->cv.notify_all();
  };
}

Status PublishBatch::Wait(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(state_->mu);
  bool settled = state_->cv.wait_until(
      lock, deadline, [&] { return state_->failed || state_->confirmed == state_->added; });
  if (state_->failed) return PublishOutcomeStatus(state_->failure);
  if (!settled) {
    return Status(Code::kTimeout, std::to_string(state_->confirmed) + " of " +
                                      std::to_string(state_->added) +
                                      " publishes confirmed in time");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Consumer

struct Consumer::Impl {
  ConsumerOptions options;
  BatchHandler handler;
  Publisher* republisher = nullptr;
  std::thread thread;
  std::atomic<bool> stop{false};
  bool started = false;
  std::atomic<bool> connected{false};
  std::unique_ptr<Conn> conn;
  std::atomic<uint64_t> delivered{0}, acked{0}, retried{0}, delayed{0}, dead_lettered{0},
      reconnects{0};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;
  // Acks not yet sent: the highest settled tag and how many it stands for. Settled deliveries are
  // acked together (one basic.ack, multiple) when no further delivery is already waiting, or
  // every half prefetch: one quorum-queue settle command for many instead of one each. A
  // delivery is only ever counted here after its outcome is committed or confirmed, so a crash
  // before the ack redelivers work already done, which every handler takes as a duplicate.
  uint64_t pending_ack_tag = 0;
  int pending_acks = 0;
  bool tagged = false;  // consuming several queues: a delivery's consumer tag names its queue

  void SleepUnlessStopped(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(sleep_mu);
    sleep_cv.wait_for(lock, d, [&] { return stop.load(); });
  }

  Status Connect() {
    auto c = std::make_unique<Conn>();
    Status s = c->Open(options.amqp);
    if (!s.ok()) return s;
    amqp_basic_qos(c->state(), kChannel, 0, static_cast<uint16_t>(options.prefetch), 0);
    s = CheckReply(amqp_get_rpc_reply(c->state()), "basic.qos");
    if (!s.ok()) return s;
    std::vector<std::string> queues = options.queues;
    if (queues.empty() && options.shares > 0) {
      // A partitioned work queue: this consumer's share of the partitions the broker has now.
      auto all = DiscoverQueuesOn(c->state(), options.queue);
      if (!all.ok()) return all.status();
      for (size_t i = static_cast<size_t>(options.share); i < all->size();
           i += static_cast<size_t>(options.shares)) {
        queues.push_back((*all)[i]);
      }
      LOG(INFO) << LogCtx{options.queue} << "event=amqp_partitions found=" << all->size()
                << " consuming=" << queues.size();
    } else if (queues.empty()) {
      amqp_basic_consume(c->state(), kChannel, amqp_cstring_bytes(options.queue.c_str()),
                         amqp_empty_bytes, 0,
                         /*no_ack=*/0, 0, amqp_empty_table);
      s = CheckReply(amqp_get_rpc_reply(c->state()), "basic.consume " + options.queue);
      if (!s.ok()) return s;
    }
    tagged = options.queues.size() + static_cast<size_t>(options.shares) > 0;
    // Several queues: each consumer's tag is its queue's name, which tells a delivery's queue.
    for (const auto& q : queues) {
      amqp_basic_consume(c->state(), kChannel, amqp_cstring_bytes(q.c_str()),
                         amqp_cstring_bytes(q.c_str()), 0,
                         /*no_ack=*/0, 0, amqp_empty_table);
      s = CheckReply(amqp_get_rpc_reply(c->state()), "basic.consume " + q);
      if (!s.ok()) return s;
    }
    conn = std::move(c);
    return Status::Ok();
  }

  // Sends the pending acks, if any.
  void FlushAcks() {
    if (pending_acks == 0 || !conn) return;
    int rc = amqp_basic_ack(conn->state(), kChannel, pending_ack_tag, /*multiple=*/1);
    const int n = pending_acks;
    pending_acks = 0;
    pending_ack_tag = 0;
    if (rc != AMQP_STATUS_OK) {
      Lose(std::string("basic.ack: ") + amqp_error_string2(rc));
      return;
    }
    acked.fetch_add(static_cast<uint64_t>(n));
  }

  void Lose(const std::string& why) {
    LOG(WARNING) << LogCtx{options.queue} << "event=amqp_consumer_lost why=" << why;
    pending_acks = 0;  // the broker redelivers what the lost channel held unacked
    pending_ack_tag = 0;
    connected.store(false);
    if (conn) {
      conn->MarkBroken();
      conn.reset();
    }
  }

  void Run() {
    bool first = true;
    while (!stop.load()) {
      if (!conn) {
        Status s = Connect();
        if (!s.ok()) {
          conn.reset();
          LOG_EVERY_N(WARNING, 20) << LogCtx{options.queue}
                                   << "event=amqp_consumer_connect_failed error=" << s.ToString();
          SleepUnlessStopped(options.amqp.reconnect_delay);
          continue;
        }
        connected.store(true);
        if (!first) reconnects.fetch_add(1);
        first = false;
        LOG(INFO) << LogCtx{options.queue} << "event=amqp_consuming prefetch=" << options.prefetch;
      }
      amqp_connection_state_t st = conn->state();
      // Every frame read on a channel (a delivery's method, header and body frames: ~1-2 KB for an
      // inbound message) stays in the connection's pool for that channel until released, and
      // librabbitmq never releases it by itself. Released only when no ack was pending, the pool
      // grew by every delivery for as long as deliveries kept coming less than 200 ms apart, which
      // a steady load always does. Nothing read before this point is still in use: every envelope
      // was copied and destroyed.
      amqp_maybe_release_buffers(st);
      amqp_envelope_t env;
      amqp_rpc_reply_t r;
      if (pending_acks > 0) {
        // Acks wait only while more deliveries are already here; before blocking they go.
        timeval zero{0, 0};
        r = amqp_consume_message(st, &env, &zero, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
          FlushAcks();
          if (!conn) continue;
          timeval tv{0, 200000};
          r = amqp_consume_message(st, &env, &tv, 0);
        }
      } else {
        timeval tv{0, 200000};
        r = amqp_consume_message(st, &env, &tv, 0);
      }
      if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        std::vector<Delivery> batch;
        std::vector<uint64_t> tags;
        for (;;) {
          batch.push_back(
              ToDelivery(tagged ? BytesToString(env.consumer_tag) : options.queue, env));
          tags.push_back(env.delivery_tag);
          amqp_destroy_envelope(&env);
          if (static_cast<int>(batch.size()) >= options.batch) break;
          // More only if already received: a batch never waits to fill.
          timeval zero{0, 0};
          if (amqp_consume_message(st, &env, &zero, 0).reply_type != AMQP_RESPONSE_NORMAL) break;
        }
        delivered.fetch_add(batch.size());
        std::vector<Disposition> disps;
        try {
          disps = handler(batch);
        } catch (const std::exception& e) {
          disps.assign(batch.size(), Disposition::Retry(std::string("handler threw: ") + e.what()));
        }
        if (disps.size() != batch.size()) {
          disps.assign(batch.size(),
                       Disposition::Retry("handler returned " + std::to_string(disps.size()) +
                                          " dispositions for " + std::to_string(batch.size())));
        }
        for (size_t i = 0; i < batch.size() && conn; ++i) Settle(tags[i], batch[i], disps[i]);
        if (pending_acks * 2 >= options.prefetch) FlushAcks();
        continue;
      }
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        continue;
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t frame;
        timeval zero{0, 0};
        int rc = amqp_simple_wait_frame_noblock(st, &frame, &zero);
        if (rc == AMQP_STATUS_OK && frame.frame_type == AMQP_FRAME_METHOD &&
            (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
          std::string why = CloseReason(frame);
          AnswerClose(st, frame);
          Lose(why);
        } else if (rc != AMQP_STATUS_OK && rc != AMQP_STATUS_TIMEOUT) {
          Lose(amqp_error_string2(rc));
        }
        continue;
      }
      Lose(CheckReply(r, "consume").ToString());
    }
    FlushAcks();
    connected.store(false);
    conn.reset();
  }

  // Publishes a copy of the delivery for a retry tier or the parking queue; acks the original
  // only once the broker confirmed the copy.
  void Settle(uint64_t tag, const Delivery& d, const Disposition& disp) {
    LogCtx ctx{d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
               d.Header(headers::kDedupeKey)};
    // A partition's retries and parked messages go through its work queue's delay and parking
    // queues (the delay queues route back through the partitions' exchange).
    const std::string work_queue = WorkQueueOf(d.queue);
    Disposition::Kind kind = disp.kind;
    std::string reason = disp.reason;
    // A delay is not a failure: the attempt count travels unchanged.
    int attempt = kind == Disposition::Kind::kDelay ? d.attempt : d.attempt + 1;
    if (kind == Disposition::Kind::kRetry && attempt >= options.max_attempts) {
      kind = Disposition::Kind::kDeadLetter;
      reason = "gave up after " + std::to_string(attempt) + " attempts: " + reason;
    }
    if (kind != Disposition::Kind::kAck) {
      AmqpMessage copy;
      copy.body = d.body;
      copy.message_id = d.message_id;
      copy.headers = d.headers;
      copy.headers.erase(headers::kAttempt);
      copy.int_headers[headers::kAttempt] = attempt;
      copy.headers["x-original-routing-key"] = d.routing_key;
      for (const auto& [name, value] : disp.headers) {
        if (value.empty()) {
          copy.headers.erase(name);
        } else {
          copy.headers[name] = value;
        }
      }
      if (kind == Disposition::Kind::kDelay) {
        copy.headers["x-delay-reason"] = reason;
        copy.exchange = exchanges::kRetry;
        copy.routing_key = DelayRoutingKey(work_queue, disp.delay_ms);
      } else {
        copy.headers["x-last-error"] = reason;
        if (!copy.headers.count("x-first-error")) copy.headers["x-first-error"] = reason;
        if (disp.code != 0) copy.int_headers["x-last-error-code"] = disp.code;
      }
      if (kind == Disposition::Kind::kRetry) {
        copy.exchange = exchanges::kRetry;
        copy.routing_key = RetryRoutingKey(work_queue, attempt, disp.delay_ms);
      } else if (kind == Disposition::Kind::kDeadLetter) {
        copy.exchange = exchanges::kDlx;
        copy.routing_key = work_queue;
        copy.headers[headers::kDeathReason] = reason;
        copy.headers[headers::kOriginalQueue] = work_queue;
        copy.headers["x-parked-at"] =
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
      }
      Status s = republisher
                     ? republisher->PublishAndWait(std::move(copy), std::chrono::seconds(10))
                     : Status(Code::kUnavailable, "no republisher");
      if (!s.ok()) {
        LOG(WARNING) << ctx << "event=republish_failed error=" << s.ToString() << " requeue=true";
        amqp_basic_nack(conn->state(), kChannel, tag, 0, /*requeue=*/1);
        return;
      }
      if (kind == Disposition::Kind::kRetry) {
        retried.fetch_add(1);
        LOG(INFO) << ctx << "event=retry attempt=" << attempt << " reason=" << reason;
      } else if (kind == Disposition::Kind::kDelay) {
        delayed.fetch_add(1);
        VLOG(1) << ctx << "event=delayed ms=" << disp.delay_ms << " reason=" << reason;
      } else {
        dead_lettered.fetch_add(1);
        LOG(WARNING) << ctx << "event=dead_lettered attempt=" << attempt << " reason=" << reason;
      }
    }
    pending_ack_tag = std::max(pending_ack_tag, tag);
    ++pending_acks;
  }
};

Consumer::Consumer(ConsumerOptions options, BatchHandler handler, Publisher* republisher)
    : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->options.batch = std::max(1, impl_->options.batch);
  impl_->handler = std::move(handler);
  impl_->republisher = republisher;
}

Consumer::Consumer(ConsumerOptions options, DeliveryHandler handler, Publisher* republisher)
    : Consumer(
          [&options] {
            options.batch = 1;
            return std::move(options);
          }(),
          BatchHandler([handler = std::move(handler)](const std::vector<Delivery>& batch) {
            std::vector<Disposition> out;
            for (const auto& d : batch) out.push_back(handler(d));
            return out;
          }),
          republisher) {}

Consumer::~Consumer() { Stop(); }

void Consumer::Start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void Consumer::Stop() {
  if (!impl_->started || impl_->stop.exchange(true)) return;
  impl_->sleep_cv.notify_all();
  impl_->thread.join();
}

bool Consumer::connected() const { return impl_->connected.load(); }

ConsumerStats Consumer::stats() const {
  ConsumerStats s;
  s.delivered = impl_->delivered.load();
  s.acked = impl_->acked.load();
  s.retried = impl_->retried.load();
  s.delayed = impl_->delayed.load();
  s.dead_lettered = impl_->dead_lettered.load();
  s.reconnects = impl_->reconnects.load();
  return s;
}

Result<uint32_t> QueueMessageCount(const AmqpOptions& options, const std::string& work_queue) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = false;
  Status s = c.Open(o);
  if (!s.ok()) return s;
  uint32_t total = 0;
  auto queues = DiscoverQueuesOn(c.state(), work_queue);
  if (!queues.ok()) return queues.status();
  for (const auto& queue : *queues) {
    amqp_queue_declare_ok_t* ok =
        amqp_queue_declare(c.state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                           /*passive=*/1, 0, 0, 0, amqp_empty_table);
    s = CheckReply(amqp_get_rpc_reply(c.state()), "queue.declare passive " + queue);
    if (!s.ok()) return s;
    total += ok->message_count;
  }
  return total;
}

// Up to `max` of the messages ready in `queue` now, through a consumer (acked once all are read).
Result<std::vector<Delivery>> ConsumeReady(amqp_connection_state_t st, const std::string& queue,
                                           size_t max) {
  std::vector<Delivery> out;
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(st, kChannel, amqp_cstring_bytes(queue.c_str()),
                                                   /*passive=*/1, 0, 0, 0, amqp_empty_table);
  Status s = CheckReply(amqp_get_rpc_reply(st), "queue.declare passive " + queue);
  if (!s.ok()) return s;
  const size_t n = std::min<size_t>(max, ok->message_count);
  if (n == 0) return out;
  amqp_basic_qos(st, kChannel, 0, static_cast<uint16_t>(std::min<size_t>(n, 65535)), 0);
  s = CheckReply(amqp_get_rpc_reply(st), "basic.qos");
  if (!s.ok()) return s;
  amqp_basic_consume_ok_t* consume = amqp_basic_consume(
      st, kChannel, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  s = CheckReply(amqp_get_rpc_reply(st), "basic.consume " + queue);
  if (!s.ok()) return s;
  const std::string tag = BytesToString(consume->consumer_tag);
  uint64_t last_tag = 0;
  while (out.size() < n) {
    amqp_envelope_t env;
    timeval tv{5, 0};
    amqp_rpc_reply_t r = amqp_consume_message(st, &env, &tv, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      s = CheckReply(r, "consume " + queue);
      if (!s.ok()) return s;
      break;
    }
    out.push_back(ToDelivery(queue, env));
    last_tag = env.delivery_tag;
    amqp_destroy_envelope(&env);
  }
  // Acked together at the end: the prefetch (n) keeps the broker from sending more meanwhile.
  if (last_tag != 0) {
    s = CheckRc(amqp_basic_ack(st, kChannel, last_tag, /*multiple=*/1), "ack " + queue);
    if (!s.ok()) return s;
  }
  amqp_basic_cancel(st, kChannel, amqp_cstring_bytes(tag.c_str()));
  s = CheckReply(amqp_get_rpc_reply(st), "basic.cancel " + queue);
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Delivery>> TakeMessages(const AmqpOptions& options,
                                           const std::string& work_queue, size_t max) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = false;
  Status s = c.Open(o);
  if (!s.ok()) return s;
  std::vector<Delivery> out;
  auto queues = DiscoverQueuesOn(c.state(), work_queue);
  if (!queues.ok()) return queues.status();
  for (const auto& queue : *queues) {
    if (WorkQueueOf(queue) != queue) {
      // A partition has a single active consumer, and such a quorum queue refuses basic.get.
      auto taken = ConsumeReady(c.state(), queue, max - out.size());
      if (!taken.ok()) return taken.status();
      for (auto& d : *taken) out.push_back(std::move(d));
      continue;
    }
    while (out.size() < max) {
      amqp_rpc_reply_t r =
          amqp_basic_get(c.state(), kChannel, amqp_cstring_bytes(queue.c_str()), /*no_ack=*/1);
      s = CheckReply(r, "basic.get " + queue);
      if (!s.ok()) return s;
      if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) break;
      amqp_envelope_t env{};
      amqp_message_t msg;
      s = CheckReply(amqp_read_message(c.state(), kChannel, &msg, 0), "read message " + queue);
      if (!s.ok()) return s;
      auto* get_ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
      env.exchange = get_ok->exchange;
      env.routing_key = get_ok->routing_key;
      env.redelivered = get_ok->redelivered;
      env.message = msg;
      out.push_back(ToDelivery(queue, env));
      amqp_destroy_message(&msg);
    }
  }
  return out;
}

Result<std::vector<std::string>> DiscoverQueues(const AmqpOptions& options,
                                                const std::string& work_queue) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = false;
  Status s = c.Open(o);
  if (!s.ok()) return s;
  return DiscoverQueuesOn(c.state(), work_queue);
}

Status DeclareConvoyTopology(const AmqpOptions& options) {
  Conn c;
  AmqpOptions o = options;
  o.declare_topology = true;
  return c.Open(o);
}

// ---------------------------------------------------------------------------------------------
// AmqpAdmin

bool IsInequivalentArgs(const Status& status) {
  return status.code() == Code::kRejected && status.message().find("406") != std::string::npos;
}

struct AmqpAdmin::Impl {
  AmqpOptions options;
  std::unique_ptr<Conn> conn;
  std::unique_ptr<Publisher> publisher;
  bool channel_closed = false;

  // After the broker closed the channel (a refused call): close-ok, then a new channel 1.
  Status EnsureChannel() {
    if (!conn) return Status(Code::kUnavailable, "not open");
    if (!channel_closed) return Status::Ok();
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn->state(), kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    amqp_channel_open(conn->state(), kChannel);
    Status s = CheckReply(amqp_get_rpc_reply(conn->state()), "channel.open");
    if (s.ok()) channel_closed = false;
    return s;
  }
  Status Check(const std::string& what) {
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn->state());
    Status s = CheckReply(r, what);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      channel_closed = true;
    }
    VLOG(1) << LogCtx{"amqp-admin"} << "event=rpc what=\"" << what << "\" status=" << s.ToString();
    return s;
  }
  // The channel, and a confirming publisher for the copies a move makes.
  Status Ready(const std::string& what) {
    Status s = EnsureChannel();
    if (!s.ok() || publisher) return s;
    publisher = std::make_unique<Publisher>(options);
    publisher->Start();
    if (!publisher->WaitConnected(std::chrono::seconds(10))) {
      return Status(Code::kUnavailable, what + ": publisher could not connect");
    }
    return Status::Ok();
  }
  // One message off `queue` with basic.get, unacked (its delivery tag in *tag); nullopt when empty.
  Result<std::optional<Delivery>> Get(const std::string& queue, uint64_t* tag) {
    amqp_connection_state_t st = conn->state();
    amqp_rpc_reply_t r =
        amqp_basic_get(st, kChannel, amqp_cstring_bytes(queue.c_str()), /*no_ack=*/0);
    Status s = Check("basic.get " + queue);
    if (!s.ok()) return s;
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::optional<Delivery>();
    auto* get_ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
    amqp_envelope_t env{};
    env.exchange = get_ok->exchange;
    env.routing_key = get_ok->routing_key;
    env.redelivered = get_ok->redelivered;
    *tag = get_ok->delivery_tag;
    amqp_message_t msg;
    s = CheckReply(amqp_read_message(st, kChannel, &msg, 0), "read message " + queue);
    if (!s.ok()) return s;
    env.message = msg;
    Delivery d = ToDelivery(queue, env);
    amqp_destroy_message(&msg);
    return std::optional<Delivery>(std::move(d));
  }
};

namespace {
// The copy a move publishes: body, message id and headers, the attempt count as a number.
AmqpMessage MovedCopy(Delivery&& d, const std::string& exchange, const std::string& routing_key) {
  AmqpMessage copy;
  copy.exchange = exchange;
  copy.routing_key = routing_key;
  copy.body = std::move(d.body);
  copy.message_id = d.message_id;
  copy.headers = std::move(d.headers);
  auto attempt = copy.headers.find(headers::kAttempt);
  if (attempt != copy.headers.end()) {
    copy.int_headers[headers::kAttempt] = std::atoll(attempt->second.c_str());
    copy.headers.erase(attempt);
  }
  return copy;
}
}  // namespace

AmqpAdmin::AmqpAdmin() : impl_(new Impl) {}
AmqpAdmin::~AmqpAdmin() {
  if (impl_->publisher) impl_->publisher->Stop();
}

Status AmqpAdmin::Open(const AmqpOptions& options) {
  impl_->options = options;
  impl_->options.declare_topology = false;
  impl_->conn = std::make_unique<Conn>();
  return impl_->conn->Open(impl_->options);
}

Result<QueueState> AmqpAdmin::Inspect(const std::string& queue) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                         /*passive=*/1, 0, 0, 0, amqp_empty_table);
  s = impl_->Check("queue.declare passive " + queue);
  QueueState state;
  if (!s.ok()) {
    if (impl_->channel_closed && s.message().find("404") != std::string::npos) return state;
    return s;
  }
  state.exists = true;
  state.messages = ok->message_count;
  state.consumers = ok->consumer_count;
  return state;
}

Result<bool> AmqpAdmin::ExchangeExists(const std::string& exchange) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_exchange_declare(impl_->conn->state(), kChannel, amqp_cstring_bytes(exchange.c_str()),
                        amqp_empty_bytes,
                        /*passive=*/1, 0, 0, 0, amqp_empty_table);
  s = impl_->Check("exchange.declare passive " + exchange);
  if (!s.ok()) {
    if (impl_->channel_closed && s.message().find("404") != std::string::npos) return false;
    return s;
  }
  return true;
}

Status AmqpAdmin::DeleteExchange(const std::string& exchange) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_exchange_delete(impl_->conn->state(), kChannel, amqp_cstring_bytes(exchange.c_str()),
                       /*if_unused=*/0);
  return impl_->Check("exchange.delete " + exchange);
}

Result<int> AmqpAdmin::CountPartitions(const std::string& work_queue) {
  if (!impl_->conn) return Status(Code::kUnavailable, "not open");
  return CountPartitionsOn(impl_->conn->state(), work_queue);
}

Status AmqpAdmin::DeclareExchange(const ExchangeSpec& ex) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendExchangeDeclare(impl_->conn->state(), ex);
  return impl_->Check("exchange.declare " + ex.name);
}

Status AmqpAdmin::DeclareQueue(const QueueSpec& q) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendQueueDeclare(impl_->conn->state(), q);
  return impl_->Check("queue.declare " + q.name);
}

Status AmqpAdmin::Bind(const BindingSpec& b) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendBind(impl_->conn->state(), b, /*unbind=*/false);
  return impl_->Check("bind " + b.exchange + " -> " + b.queue);
}

Status AmqpAdmin::Unbind(const BindingSpec& b) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  SendBind(impl_->conn->state(), b, /*unbind=*/true);
  return impl_->Check("unbind " + b.exchange + " -> " + b.queue);
}

Status AmqpAdmin::DeleteQueue(const std::string& queue, bool if_empty, bool if_unused) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_queue_delete(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                    if_unused ? 1 : 0, if_empty ? 1 : 0);
  return impl_->Check("queue.delete " + queue);
}

Result<uint32_t> AmqpAdmin::Purge(const std::string& queue) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_queue_purge_ok_t* ok =
      amqp_queue_purge(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()));
  s = impl_->Check("queue.purge " + queue);
  if (!s.ok()) return s;
  return ok->message_count;
}

Status AmqpAdmin::TryConsume(const std::string& queue) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_basic_consume_ok_t* ok =
      amqp_basic_consume(impl_->conn->state(), kChannel, amqp_cstring_bytes(queue.c_str()),
                         amqp_empty_bytes, 0, /*no_ack=*/0, 0, amqp_empty_table);
  s = impl_->Check("basic.consume " + queue);
  if (!s.ok()) return s;
  amqp_basic_cancel(impl_->conn->state(), kChannel, ok->consumer_tag);
  return impl_->Check("basic.cancel " + queue);
}

Status AmqpAdmin::TryPublish(const std::string& exchange, const std::string& routing_key) {
  Status s = impl_->EnsureChannel();
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  amqp_confirm_select(st, kChannel);
  s = impl_->Check("confirm.select");
  if (!s.ok()) return s;
  amqp_basic_properties_t props{};
  const std::string what = "basic.publish " + exchange + " " + routing_key;
  s = CheckRc(amqp_basic_publish(st, kChannel, amqp_cstring_bytes(exchange.c_str()),
                                 amqp_cstring_bytes(routing_key.c_str()), 0, 0, &props,
                                 amqp_cstring_bytes("probe")),
              what);
  if (!s.ok()) return s;
  // The broker answers a publish it refuses by closing the channel, else with a confirm.
  timeval tv{10, 0};
  amqp_frame_t frame;
  s = CheckRc(amqp_simple_wait_frame_noblock(st, &frame, &tv), what + ": waiting for its confirm");
  if (!s.ok()) return s;
  if (frame.frame_type != AMQP_FRAME_METHOD)
    return Status(Code::kInternal, what + ": unexpected frame");
  if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return Status::Ok();
  if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    impl_->channel_closed = true;
    return Status(Code::kRejected, what + ": " + CloseReason(frame));
  }
  return Status(Code::kRejected, what + ": not confirmed");
}

Result<uint64_t> AmqpAdmin::MoveAll(const std::string& from, const std::string& to) {
  Status s = impl_->Ready("move " + from);
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  constexpr size_t kBatch = 256;
  uint64_t moved = 0;
  while (true) {
    // Take up to a batch unacked, copy them, and ack them (multiple) once every copy is confirmed.
    PublishBatch batch;
    uint64_t last_tag = 0;
    size_t taken = 0;
    for (; taken < kBatch; ++taken) {
      auto got = impl_->Get(from, &last_tag);
      if (!got.ok()) return got.status();
      if (!*got) break;
      impl_->publisher->Publish(MovedCopy(std::move(**got), "", to), batch.Add());
    }
    if (taken == 0) return moved;
    s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (!s.ok()) {
      // Unacked originals go back to `from` when this connection closes: nothing is lost.
      return Status(s.code(), "move " + from + " -> " + to + ": " + s.ToString());
    }
    s = CheckRc(amqp_basic_ack(st, kChannel, last_tag, /*multiple=*/1), "basic.ack " + from);
    if (!s.ok()) return s;
    moved += taken;
  }
}

Result<uint64_t> AmqpAdmin::MoveThrough(const std::string& from, const std::string& exchange,
                                        const std::string& routing_key) {
  Status s = impl_->Ready("move " + from);
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  constexpr uint32_t kBatch = 500;
  uint64_t moved = 0;
  for (;;) {
    auto state = Inspect(from);
    if (!state.ok()) return state.status();
    if (!state->exists || state->messages == 0) return moved;
    if (state->consumers > 0) {
      return Status(Code::kRejected,
                    from + " has " + std::to_string(state->consumers) + " consumer(s)");
    }
    // A batch held unacked (the prefetch stops the broker there), copied, and acked once every copy
    // is confirmed; the consumer is cancelled first, so nothing more is delivered meanwhile.
    const uint32_t n = std::min(kBatch, state->messages);
    amqp_basic_qos(st, kChannel, 0, static_cast<uint16_t>(n), 0);
    s = impl_->Check("basic.qos");
    if (!s.ok()) return s;
    amqp_basic_consume_ok_t* consume =
        amqp_basic_consume(st, kChannel, amqp_cstring_bytes(from.c_str()), amqp_empty_bytes, 0,
                           /*no_ack=*/0, 0, amqp_empty_table);
    s = impl_->Check("basic.consume " + from);
    if (!s.ok()) return s;
    const std::string tag = BytesToString(consume->consumer_tag);
    PublishBatch batch;
    uint64_t last_tag = 0;
    uint32_t taken = 0;
    while (taken < n) {
      amqp_envelope_t env;
      timeval tv{10, 0};
      amqp_rpc_reply_t r = amqp_consume_message(st, &env, &tv, 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        s = CheckReply(r, "consume " + from);
        break;
      }
      Delivery d = ToDelivery(from, env);
      last_tag = env.delivery_tag;
      amqp_destroy_envelope(&env);
      impl_->publisher->Publish(MovedCopy(std::move(d), exchange, routing_key), batch.Add());
      ++taken;
    }
    amqp_basic_cancel(st, kChannel, amqp_cstring_bytes(tag.c_str()));
    Status cancelled = impl_->Check("basic.cancel " + from);
    if (s.ok()) s = cancelled;
    if (s.ok()) s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (!s.ok()) {
      // The originals go back to `from` (a copy may have gone too: a duplicate, never a loss).
      if (last_tag != 0) amqp_basic_nack(st, kChannel, last_tag, /*multiple=*/1, /*requeue=*/1);
      return Status(s.code(), "move " + from + " -> " +
                                  (exchange.empty() ? routing_key : exchange) + ": " + s.message());
    }
    s = CheckRc(amqp_basic_ack(st, kChannel, last_tag, /*multiple=*/1), "basic.ack " + from);
    if (!s.ok()) return s;
    moved += taken;
  }
}

Result<size_t> AmqpAdmin::Sweep(const std::string& queue, size_t max, const SweepDecision& decide) {
  auto state = Inspect(queue);
  if (!state.ok()) return state.status();
  if (!state->exists) return Status(Code::kNotFound, "no queue " + queue);
  Status s = impl_->Ready("sweep " + queue);
  if (!s.ok()) return s;
  amqp_connection_state_t st = impl_->conn->state();
  // Only the messages ready now: one returned to the queue is not seen twice.
  const size_t n = std::min<size_t>(max, state->messages);
  std::vector<std::pair<uint64_t, SweepAction>> held;
  PublishBatch batch;
  auto give_back = [&](const Status& why) {
    amqp_basic_nack(st, kChannel, 0, /*multiple=*/1, /*requeue=*/1);
    return why;
  };
  for (size_t i = 0; i < n; ++i) {
    uint64_t tag = 0;
    auto got = impl_->Get(queue, &tag);
    if (!got.ok()) return give_back(got.status());
    if (!*got) break;
    AmqpMessage copy;
    SweepAction action = decide(**got, &copy);
    if (action == SweepAction::kMove) impl_->publisher->Publish(std::move(copy), batch.Add());
    held.emplace_back(tag, action);
  }
  s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  if (!s.ok())
    return give_back(
        Status(s.code(), "sweep " + queue + ": a copy was not confirmed: " + s.ToString()));
  for (const auto& [tag, action] : held) {
    int rc = action == SweepAction::kKeep ? amqp_basic_nack(st, kChannel, tag, 0, /*requeue=*/1)
                                          : amqp_basic_ack(st, kChannel, tag, 0);
    s = CheckRc(rc, "settle " + queue);
    if (!s.ok()) return s;
  }
  // The broker settles a nack (requeue) after it answered nothing: until it has, what was kept
  // is neither unacked nor ready, and a sweep right after this one (an operator's second
  // `convoyctl dlq list`) would not see it. Wait, a little, until it is back.
  const size_t removed = static_cast<size_t>(std::count_if(
      held.begin(), held.end(), [](const auto& h) { return h.second != SweepAction::kKeep; }));
  const size_t expected = state->messages >= removed ? state->messages - removed : 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    auto now = Inspect(queue);
    if (!now.ok() || !now->exists || now->messages >= expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return held.size();
}

}  // namespace convoy
