#include "store/thread_control.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/crypto.h"
#include "convoy/topology.h"

namespace convoy::conversation {

namespace {

constexpr const char* kMarkPending =
    "UPDATE conversations SET thread_control = $2 WHERE conversation_key = $1";
constexpr const char* kClearPending =
    "UPDATE conversations SET thread_control = NULL WHERE conversation_key = $1 AND thread_control "
    "= $2";
constexpr const char* kMarker = ":thread_control:";

std::string CommandBody(const ThreadControlCommand& c, const std::string& dedupe,
                        const std::string& correlation) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  auto str = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("schema", "outbound.thread_control");
  w.Key("version");
  w.Int(1);
  str("correlation_id", correlation);
  str("dedupe_key", dedupe);
  str("conversation_key", c.conversation_key);
  str("phone_number_id", c.phone_number_id);
  if (!c.wa_id.empty()) {
    str("to", c.wa_id);
  } else {
    str("recipient", c.user_id);
  }
  str("action", c.action);
  if (!c.target_role.empty()) str("target_role", c.target_role);
  if (!c.metadata.empty()) str("metadata", c.metadata);
  str("partner_app_id", c.partner_app_id);
  if (!c.agent.empty()) str("agent", c.agent);
  w.EndObject();
  return b.GetString();
}

}  // namespace

Result<std::string> QueueThreadControl(PgConnection& db, const ThreadControlCommand& c) {
  const std::string dedupe = c.conversation_key + kMarker + c.action + ":" + RandomHexId();
  const std::string correlation = RandomHexId();
  Status s = QueueCommand(db, queues::kOutboundSend, dedupe, correlation, c.conversation_key,
                          CommandBody(c, dedupe, correlation));
  if (s.ok()) s = db.Exec(kMarkPending, {c.conversation_key, dedupe}).status();
  if (!s.ok()) return s;
  return dedupe;
}

std::string PendingThreadAction(const std::string& pending_key) {
  const size_t at = pending_key.rfind(kMarker);
  if (at == std::string::npos) return "";
  const std::string rest = pending_key.substr(at + std::string(kMarker).size());
  return rest.substr(0, rest.find(':'));
}

Result<std::string> ApplyThreadControlOutcome(PgConnection& db, const std::string& conversation_key,
                                              const std::string& pending_key,
                                              const ThreadControlOutcome& o,
                                              const std::string& handoff_sink, Ownership* own) {
  std::string note = "thread_control " + o.action + " " + o.outcome;
  if (!o.reason.empty()) note += ": " + o.reason.substr(0, 300);
  if (pending_key != o.dedupe_key) return note + " (no longer pending: nothing changed)";
  Status s = db.Exec(kClearPending, {conversation_key, o.dedupe_key}).status();
  if (!s.ok()) return s;
  std::string owner, agent, sink;
  if (o.action == "take" && o.outcome == "done") {
    owner = kOwnerHuman;
    agent = o.agent;
    sink = own->sink.empty() ? handoff_sink : "";
  } else if (o.action != "take" && o.outcome != "failed") {
    owner =
        kOwnerElsewhere;  // unknown included: never speak on a thread convoy may have given away
  }
  if (owner.empty()) return note;
  s = SetOwner(db, conversation_key, owner, agent, sink, false);
  if (!s.ok()) return s;
  own->owner = owner;
  own->agent = agent;
  if (!sink.empty()) own->sink = sink;
  return note;
}

}  // namespace convoy::conversation
