#include "store/transcript.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/topology.h"
#include "store/numbers.h"

namespace convoy::conversation {

namespace {

constexpr const char* kRecord =
    "INSERT INTO conversation_messages (conversation_key, direction, author, kind, body, media_id, "
    "channel, dedupe_key, "
    "wa_timestamp) VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), $7, $8, NULLIF($9, "
    "'0')::bigint) "
    "ON CONFLICT (dedupe_key) DO NOTHING";
// Oldest first of the newest `limit`; an outgoing row's fate is outbound's.
constexpr const char* kTranscript =
    "SELECT coalesce(json_agg(json_strip_nulls(json_build_object('seq', t.seq, 'direction', "
    "t.direction, 'author', "
    "t.author, 'kind', t.kind, 'body', t.body, 'media_id', t.media_id, 'channel', t.channel, 'at', "
    "t.at, "
    "'status', CASE WHEN t.direction = 'out' THEN coalesce(m.status, 'queued') END, 'wamid', "
    "m.wamid, "
    "'error_code', m.error_code)) ORDER BY t.seq), '[]'::json)::text "
    "FROM (SELECT * FROM conversation_messages WHERE conversation_key = $1 ORDER BY seq DESC LIMIT "
    "$2::int) t "
    "LEFT JOIN outbound_messages m ON m.dedupe_key = t.dedupe_key";
constexpr const char* kSetOwner =
    "UPDATE conversations SET owner = $2, owner_agent = NULLIF($3, ''), owner_sink = "
    "coalesce(NULLIF($4, ''), "
    "owner_sink), owner_since = CASE WHEN owner = $2 THEN owner_since WHEN $5 THEN "
    "clock_timestamp() ELSE now() END, "
    "updated_at = now() "
    "WHERE conversation_key = $1";
constexpr const char* kReleaseIdle =
    "WITH idle AS (UPDATE conversations c SET owner = 'bot', owner_agent = NULL, owner_since = "
    "now(), updated_at = now() "
    "WHERE c.owner = 'human' AND c.owner_since < now() - $1::bigint * interval '1 second' AND NOT "
    "EXISTS (SELECT 1 FROM "
    "conversation_messages m WHERE m.conversation_key = c.conversation_key AND m.author LIKE "
    "'agent:%' AND m.at > "
    "now() - $1::bigint * interval '1 second') RETURNING c.conversation_key, c.flow, "
    "c.state->>'step' AS step) "
    "INSERT INTO transitions (conversation_key, from_step, to_step, trigger_dedupe_key, "
    "correlation_id, note) "
    "SELECT conversation_key, coalesce(flow || '/' || step, 'idle'), coalesce(flow || '/' || step, "
    "'idle'), "
    "'idle_release:' || conversation_key || ':' || extract(epoch FROM now())::bigint, "
    "'idle_release', "
    "'released: no agent message for ' || $1 || ' s' FROM idle RETURNING 1";
// An agent's message, moved to a status after the last one told (each once, never backwards).
constexpr const char* kTellStatus =
    "UPDATE conversation_messages SET status_told = $3 WHERE dedupe_key = $1 AND conversation_key "
    "= $2 AND "
    "direction = 'out' AND author LIKE 'agent:%' AND (CASE coalesce(status_told, '') WHEN 'sent' "
    "THEN 2 "
    "WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5 ELSE 1 END) < (CASE $3 WHEN "
    "'sent' THEN 2 "
    "WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5 ELSE 0 END) RETURNING seq, "
    "author, kind";
constexpr const char* kInsertOutbox =
    "INSERT INTO outbox (exchange, routing_key, dedupe_key, correlation_id, conversation_key, "
    "body, due_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (dedupe_key) DO NOTHING";

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string DeliverBody(const ConversationDelivery& d, const std::string& sink,
                        const std::string& dedupe) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Str(w, "schema", "outbound.deliver");
  w.Key("version");
  w.Int(1);
  Str(w, "correlation_id", d.correlation_id);
  Str(w, "dedupe_key", dedupe);
  Str(w, "conversation_key", d.conversation_key);
  Str(w, "phone_number_id", d.phone_number_id);
  Str(w, "result_id", dedupe);
  Str(w, "sink", sink);
  Str(w, "type", d.type);
  Str(w, "flow", d.flow.empty() ? "conversation" : d.flow);
  Str(w, "outcome", d.outcome.empty() ? d.type.substr(d.type.find('.') + 1) : d.outcome);
  w.Key("completed_at");
  w.Int64(d.at);
  if (!d.wa_id.empty()) Str(w, "wa_id", d.wa_id);
  if (!d.user_id.empty()) Str(w, "user_id", d.user_id);
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : d.fields) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  w.Key("photos");
  w.StartArray();
  w.EndArray();
  w.Key("conversation");
  w.StartObject();
  Str(w, "id", d.conversation_id);
  for (const auto& [k, v] : d.conversation_json) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.RawValue(v.c_str(), v.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

}  // namespace

std::string JsonQuote(const std::string& s) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return b.GetString();
}

Status RecordMessage(PgConnection& db, const std::string& conversation_key,
                     const TranscriptMessage& m) {
  return db
      .Exec(kRecord, {conversation_key, m.direction, m.author, m.kind.empty() ? "text" : m.kind,
                      m.body, m.media_id, m.channel, m.dedupe_key, std::to_string(m.wa_timestamp)})
      .status();
}

Result<std::string> TranscriptJson(PgConnection& db, const std::string& conversation_key,
                                   int limit) {
  auto r = db.Exec(kTranscript, {conversation_key, std::to_string(limit)});
  if (!r.ok()) return r.status();
  return r->empty() ? std::string("[]") : r->get(0, 0);
}

Status SetOwner(PgConnection& db, const std::string& conversation_key, const std::string& owner,
                const std::string& agent, const std::string& sink, bool from_outside) {
  return db.Exec(kSetOwner, {conversation_key, owner, agent, sink, from_outside ? "true" : "false"})
      .status();
}

Status QueueCommand(PgConnection& db, const std::string& queue, const std::string& dedupe_key,
                    const std::string& correlation_id, const std::string& conversation_key,
                    const std::string& body) {
  return db
      .Exec(kInsertOutbox, {std::string(exchanges::kCommands), queue, dedupe_key, correlation_id,
                            conversation_key, body})
      .status();
}

Result<int> ReleaseIdleHumans(PgConnection& db, int64_t idle_seconds) {
  auto r = db.Exec(kReleaseIdle, {std::to_string(idle_seconds)});
  if (!r.ok()) return r.status();
  return static_cast<int>(r->size());
}

Status QueueConversationDelivery(PgConnection& db, const ConversationDelivery& d) {
  auto sinks = NumberSinks(db, d.phone_number_id, d.sink);
  if (!sinks.ok()) return sinks.status();
  for (const std::string& sink : *sinks) {
    const std::string key = sink == d.sink ? d.dedupe_key : d.dedupe_key + ">" + sink;
    Status s = QueueCommand(db, queues::kOutboundDeliver, key, d.correlation_id, d.conversation_key,
                            DeliverBody(d, sink, key));
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Result<bool> TellMessageStatus(PgConnection& db, ConversationDelivery d, const MessageStatus& s) {
  auto row = db.Exec(kTellStatus, {s.send_key, d.conversation_key, s.status});
  if (!row.ok()) return row.status();
  if (row->empty()) return false;
  std::string message = "{\"seq\":" + row->get(0, 0) + ",\"author\":" + JsonQuote(row->get(0, 1)) +
                        ",\"kind\":" + JsonQuote(row->get(0, 2)) +
                        ",\"status\":" + JsonQuote(s.status);
  if (!s.wamid.empty()) message += ",\"wamid\":" + JsonQuote(s.wamid);
  if (s.status == "failed" && s.code != 0) message += ",\"error_code\":" + std::to_string(s.code);
  if (s.status == "failed" && !s.reason.empty())
    message += ",\"error_reason\":" + JsonQuote(s.reason);
  message += ",\"at\":" + std::to_string(s.at) + "}";
  d.type = "conversation.message_status";
  d.dedupe_key = d.conversation_key + ":" + s.send_key + ":status:" + s.status;
  d.outcome = "message_status";
  d.at = s.at;
  d.conversation_json["message"] = message;
  Status q = QueueConversationDelivery(db, d);
  if (!q.ok()) return q;
  return true;
}

}  // namespace convoy::conversation
