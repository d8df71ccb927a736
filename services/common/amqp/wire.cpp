// rabbitmq-c's types turned into convoy's: every rabbitmq-c return value becomes a Status here
// (CheckReply, CheckRc), and frames, headers and envelopes become strings, maps and Deliveries.
#include <amqp.h>

#include <cstdlib>
#include <map>
#include <string>

#include "convoy/amqp.h"
#include "convoy/topology.h"
#include "internal.h"

namespace convoy::amqp_internal {

std::string BytesToString(amqp_bytes_t b) {
  return b.len ? std::string(static_cast<const char*>(b.bytes), b.len) : std::string();
}

namespace {

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

}  // namespace

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

}  // namespace convoy::amqp_internal
