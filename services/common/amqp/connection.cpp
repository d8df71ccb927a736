// One broker connection with channel 1 open (Conn): the URL list's nodes tried in turn, TLS or
// plain, the login, and the topology declared when asked.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <glog/logging.h>

#include <atomic>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/log.h"
#include "convoy/topology.h"
#include "internal.h"

namespace convoy::amqp_internal {

Conn::~Conn() { Close(/*graceful=*/true); }

Status Conn::Open(const AmqpOptions& options) {
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

Status Conn::OpenOne(const AmqpOptions& options, const std::string& one_url) {
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
  if (tls != IsTlsUrl(one_url)) return Status(Code::kInternal, "AMQP URL scheme and TLS disagree");
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
  ClearTlsVerifyError();
  const std::string where =
      std::string(tls ? "amqps://" : "amqp://") + info.host + ":" + std::to_string(info.port);
  int rc = amqp_socket_open_noblock(socket, info.host, info.port, &tv);
  s = CheckRc(rc, "connect " + where);
  if (!s.ok() && tls) {
    std::string detail;
    if (TlsVerifyError()[0] != '\0')
      detail = ": the broker's certificate did not verify: " + std::string(TlsVerifyError());
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

Status Conn::DeclareTopology(const Topology& t) {
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

void Conn::Close(bool graceful) {
  if (!state_) return;
  if (graceful && logged_in_ && healthy_) {
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_);
  state_ = nullptr;
}

}  // namespace convoy::amqp_internal
