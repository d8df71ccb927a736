#pragma once
// What the files of convoy's AMQP client share, and nothing outside this folder includes: this
// folder is the only place that includes rabbitmq-c (convoy/amqp.h and convoy/amqp_admin.h are the
// public side). One file per role:
//   options.cpp     the broker's URL list, its redaction, the TLS settings' checks
//   wire.cpp        every rabbitmq-c return value becomes a Status (CheckReply, CheckRc); frames,
//                   headers and envelopes become convoy's types
//   tls.cpp         the verifying TLS socket of amqps:// (the only file that includes OpenSSL)
//   connection.cpp  Conn: one connection with channel 1 open, nodes tried in turn
//   declare.cpp     exchange/queue/binding declarations, partition discovery
//   publisher.cpp   Publisher: pipelined confirms, resend after a reconnect
//   batch.cpp       PublishBatch: waits for many publishes' outcomes
//   consumer.cpp    Consumer and the ack contract (retry and delay tiers, parking)
//   tools.cpp       one-connection calls for tools and tests (count, take, discover, declare)
//   admin.cpp       AmqpAdmin: synchronous administration (moves, sweeps, upgrades)
#include <amqp.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/status.h"
#include "convoy/topology.h"

namespace convoy::amqp_internal {

// Every connection does its work on channel 1.
constexpr amqp_channel_t kChannel = 1;
// The publisher's delivery tag, carried in each message so a basic.return names its publish.
constexpr const char* kPublishTagHeader = "x-convoy-publish-tag";

// wire.cpp ------------------------------------------------------------------------------------

std::string BytesToString(amqp_bytes_t b);
// The one place an amqp_rpc_reply_t becomes a Status.
Status CheckReply(amqp_rpc_reply_t r, const std::string& what);
// The one place a rabbitmq-c status code becomes a Status.
Status CheckRc(int rc, const std::string& what);
// A message's string-valued headers (numbers as text; arrays and tables left out).
std::map<std::string, std::string> ReadHeaders(const amqp_basic_properties_t& props);
// Replies close-ok to a broker-initiated close so the broker can free the channel/connection.
void AnswerClose(amqp_connection_state_t state, const amqp_frame_t& frame);
// A channel.close or connection.close frame's code and text, for logs and statuses.
std::string CloseReason(const amqp_frame_t& frame);
// An envelope read from `queue` as a Delivery (the publish tag left out, x-attempt read).
Delivery ToDelivery(const std::string& queue, const amqp_envelope_t& env);

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

// options.cpp ---------------------------------------------------------------------------------

bool IsTlsUrl(const std::string& url);

// tls.cpp -------------------------------------------------------------------------------------

bool IsIpAddress(const char* host);
// A TLS socket that verifies the broker: the chain against the CA file (or the system's trust
// store), the host name against the certificate, TLS 1.2 or later.
Result<amqp_socket_t*> NewTlsSocket(amqp_connection_state_t state, const AmqpOptions& o,
                                    const char* host);
// The first reason the broker's certificate failed verification during this thread's handshake
// ("" when none); cleared before each connect.
void ClearTlsVerifyError();
const char* TlsVerifyError();

// declare.cpp ---------------------------------------------------------------------------------

// The declarations of topology.h's specs (their replies are read by the caller).
void SendExchangeDeclare(amqp_connection_state_t st, const ExchangeSpec& ex);
void SendQueueDeclare(amqp_connection_state_t st, const QueueSpec& q);
void SendBind(amqp_connection_state_t st, const BindingSpec& b, bool unbind);
// How many partitions of a partitioned work queue exist on the broker (on a probe channel).
Result<int> CountPartitionsOn(amqp_connection_state_t st, const std::string& work_queue);
// The queues a work queue's consumers read (DiscoverQueues in convoy/amqp.h), on a connection.
Result<std::vector<std::string>> DiscoverQueuesOn(amqp_connection_state_t st,
                                                  const std::string& work_queue);

// connection.cpp ------------------------------------------------------------------------------

// One broker connection with channel 1 open.
class Conn {
 public:
  ~Conn();

  // Connects to the first node of the URL list that answers, starting with the one that answered
  // last (a process's clients share one list): a node that is down or hung (no answer within
  // connect_timeout) passes the turn to the next. The error names every node tried.
  Status Open(const AmqpOptions& options);
  Status OpenOne(const AmqpOptions& options, const std::string& one_url);
  Status DeclareTopology(const Topology& t);
  // graceful: say goodbye to the broker (only on a healthy connection).
  void Close(bool graceful);
  void MarkBroken() { healthy_ = false; }
  amqp_connection_state_t state() const { return state_; }
  const std::string& vhost() const { return vhost_; }

 private:
  amqp_connection_state_t state_ = nullptr;
  std::string vhost_;
  bool logged_in_ = false;
  bool healthy_ = true;
};

}  // namespace convoy::amqp_internal
